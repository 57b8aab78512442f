package bgp

import (
	"net/netip"
	"testing"
)

// TestPrefixCounts: each prefix counts once per flag whatever the order of
// announcements and withdrawals; an IPv4 prefix and its v4-mapped IPv6
// twin, and prefixes differing only in length, are different prefixes;
// a prefix with no flag left is forgotten.
func TestPrefixCounts(t *testing.T) {
	v4 := netip.MustParsePrefix("198.51.100.0/24")
	v4short := netip.MustParsePrefix("198.51.100.0/23")
	mapped := netip.MustParsePrefix("::ffff:198.51.100.0/120")
	v6 := netip.MustParsePrefix("2001:db8:1::/48")
	var c prefixCounts
	steps := []struct {
		p                  netip.Prefix
		flag               uint8
		on                 bool
		received, accepted uint64
	}{
		{v4, flagReceived, true, 1, 0},
		{v4, flagReceived, true, 1, 0}, // an implicit withdrawal: same prefix again
		{v4, flagAccepted, true, 1, 1},
		{v4short, flagReceived, true, 2, 1},
		{mapped, flagReceived, true, 3, 1},
		{v6, flagReceived, true, 4, 1},
		{v6, flagAccepted, true, 4, 2},
		{v4, flagReceived, false, 3, 2}, // accepted stays until the post-policy withdrawal
		{v4, flagAccepted, false, 3, 1},
		{v4, flagAccepted, false, 3, 1}, // a withdrawal of what is gone
		{v6, flagAccepted, false, 3, 0},
		{v6, flagReceived, false, 2, 0},
	}
	for i, st := range steps {
		setFlag(&c, keyOf(st.p), st.flag, st.on)
		if c.received != st.received || c.accepted != st.accepted {
			t.Fatalf("step %d (%s flag %d %v): received %d, accepted %d; want %d, %d", i, st.p, st.flag, st.on, c.received, c.accepted, st.received, st.accepted)
		}
	}
	if len(c.flags) != 2 {
		t.Errorf("kept %d prefixes; want 2 (the /23 and the v4-mapped twin)", len(c.flags))
	}
}

// TestPrefixCountsRebuild: a rebuild (bulkimport.go) keeps what is written
// again after newGeneration, by the walk or the watch, and sweeps the
// rest; rewriting the same flags in the new generation changes no total.
func TestPrefixCountsRebuild(t *testing.T) {
	kept := keyOf(netip.MustParsePrefix("192.0.2.0/24"))
	changed := keyOf(netip.MustParsePrefix("203.0.113.0/24"))
	gone := keyOf(netip.MustParsePrefix("198.18.0.0/24"))
	added := keyOf(netip.MustParsePrefix("2001:db8:2::/48"))
	var c prefixCounts
	c.setFlags(kept, flagReceived|flagAccepted)
	c.setFlags(changed, flagReceived|flagAccepted)
	c.setFlags(gone, flagReceived|flagAccepted)
	if c.received != 3 || c.accepted != 3 {
		t.Fatalf("before the rebuild: %d received, %d accepted; want 3, 3", c.received, c.accepted)
	}
	for _, gen := range []string{"first", "second"} { // the generation bit flips back
		c.newGeneration()
		c.walkFlags(kept, flagReceived|flagAccepted) // the walk finds it as it was
		if c.received != 3 || c.accepted != 3 {
			t.Fatalf("%s rebuild: rewriting a prefix as it was changed the totals to %d, %d", gen, c.received, c.accepted)
		}
		c.walkFlags(changed, flagReceived)     // no longer accepted
		setFlag(&c, added, flagReceived, true) // new, from the watch
		c.sweep(true)
		if _, ok := c.flags[gone]; ok {
			t.Errorf("%s rebuild: a prefix neither the walk nor the watch wrote survived the sweep", gen)
		}
		if c.received != 3 || c.accepted != 1 || len(c.flags) != 3 {
			t.Errorf("%s rebuild: %d received, %d accepted, %d kept; want 3, 1, 3", gen, c.received, c.accepted, len(c.flags))
		}
		// Back to the state before for the next round.
		c.setFlags(changed, flagReceived|flagAccepted)
		c.setFlags(added, 0)
		c.setFlags(gone, flagReceived|flagAccepted)
	}
}

// TestPrefixCountsRebuildWatchWins: during a rebuild the walk reads a copy
// of the table taken as it began, and the watch runs meanwhile. A prefix
// the watch wrote before the walk got to it keeps the watch's flags: a
// withdrawal is not brought back, a change is not undone; what the walk
// writes first, the watch overwrites. Each case fails if the walk's older
// copy wins.
func TestPrefixCountsRebuildWatchWins(t *testing.T) {
	withdrawn := keyOf(netip.MustParsePrefix("192.0.2.0/24"))
	rejected := keyOf(netip.MustParsePrefix("203.0.113.0/24"))
	later := keyOf(netip.MustParsePrefix("198.18.0.0/24"))
	var c prefixCounts
	for _, k := range []prefixKey{withdrawn, rejected, later} {
		c.setFlags(k, flagReceived|flagAccepted)
	}
	c.newGeneration()
	c.setFlags(withdrawn, 0)           // the watch: withdrawn
	c.setFlags(rejected, flagReceived) // the watch: no longer accepted
	c.walkFlags(withdrawn, flagReceived|flagAccepted)
	c.walkFlags(rejected, flagReceived|flagAccepted)
	c.walkFlags(later, flagReceived|flagAccepted)
	c.setFlags(later, flagReceived) // the watch, after the walk
	c.sweep(true)
	if _, ok := c.flags[withdrawn]; ok {
		t.Error("the walk brought back a prefix the watch had withdrawn, or its withdrawal outlived the sweep")
	}
	if c.received != 2 || c.accepted != 0 || len(c.flags) != 2 {
		t.Errorf("after the rebuild: %d received, %d accepted, %d kept; want 2, 0, 2", c.received, c.accepted, len(c.flags))
	}
	for k, f := range c.flags {
		if f&flagWatched != 0 {
			t.Errorf("%v still marked as written by the watch after the sweep", k)
		}
	}
	// Outside a rebuild the watch writes as before.
	c.setFlags(rejected, 0)
	if c.received != 1 || len(c.flags) != 1 {
		t.Errorf("a withdrawal after the rebuild: %d received, %d kept; want 1, 1", c.received, len(c.flags))
	}
}

// TestPrefixCountsUnwalkedThenSwept: a rebuild whose walk failed keeps the
// session's old prefixes; the next rebuild, which flips the generation
// bit back, must still sweep one that neither it nor the watch wrote.
func TestPrefixCountsUnwalkedThenSwept(t *testing.T) {
	stale := keyOf(netip.MustParsePrefix("192.0.2.0/24"))
	kept := keyOf(netip.MustParsePrefix("203.0.113.0/24"))
	var c prefixCounts
	c.setFlags(stale, flagReceived|flagAccepted)
	c.setFlags(kept, flagReceived|flagAccepted)
	c.newGeneration()
	c.sweep(false) // the walk failed: both stay
	if c.received != 2 || len(c.flags) != 2 {
		t.Fatalf("after an unwalked rebuild: %d received, %d kept; want 2, 2", c.received, len(c.flags))
	}
	c.newGeneration()
	c.walkFlags(kept, flagReceived|flagAccepted)
	c.sweep(true)
	if _, ok := c.flags[stale]; ok || c.received != 1 || c.accepted != 1 {
		t.Errorf("after a walked rebuild: stale kept %v, %d received, %d accepted; want it swept, 1, 1", ok, c.received, c.accepted)
	}
}

// setFlag records whether key has the flag now, its other flags kept.
func setFlag(c *prefixCounts, key prefixKey, flag uint8, on bool) {
	old := c.flags[key]
	if on {
		c.setFlags(key, old|flag)
	} else {
		c.setFlags(key, old&^flag)
	}
}

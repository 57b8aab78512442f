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
		c.set(keyOf(st.p), st.flag, st.on)
		if c.received != st.received || c.accepted != st.accepted {
			t.Fatalf("step %d (%s flag %d %v): received %d, accepted %d; want %d, %d", i, st.p, st.flag, st.on, c.received, c.accepted, st.received, st.accepted)
		}
	}
	if len(c.flags) != 2 {
		t.Errorf("kept %d prefixes; want 2 (the /23 and the v4-mapped twin)", len(c.flags))
	}
}

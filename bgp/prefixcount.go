package bgp

import (
	"context"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"google.golang.org/protobuf/proto"
)

// The speaker counts each session's prefixes itself instead of setting
// GoBGP's PrefixLimit: GoBGP v4.8.0 checks that limit after every UPDATE by
// counting the whole Adj-RIB-In (AdjRib.Count copies every destination,
// osrg/gobgp#2215), so a full table took time in the square of its size.
// Here every path costs one map operation: one GoBGP watch delivers the
// update stream before import policy, which gives Received (what the ISP
// sent), and importFilter (importfilter.go) says for each path whether the
// import policy accepts it, which gives Accepted. The watch runs behind an
// unbounded queue, so the counts, and the limit, trail the import by that
// queue: the limit guards memory, not an exact number.
//
// GoBGP sets the price of a watch: v4.8.0 builds a copy of the peer's
// whole configuration for every event it queues (toConfig), once per
// UPDATE before policy and once per path after it. An earlier version
// counted Accepted from the post-policy stream; that watch alone was a
// fifth to a third of a full-table import's CPU (docs/benchmarks.md,
// "Where the time and memory go"), hence importFilter. No GoBGP counter
// replaces the pre-policy watch without a walk of the Adj-RIB-In.
//
// While a full table's initial transfer runs the watch is off
// (bulkimport.go, which starts it). When the import policy changes (a
// reload), the counts are rebuilt as at the end of a transfer, with the new
// filter, on a goroutine of their own (recountAfterReload).
//
// When Received goes over the limit the speaker hands GoBGP the limit once
// (UpdatePeer with PrefixLimit): GoBGP then counts the table a single time,
// closes the session with Cease, maximum number of prefixes reached
// (RFC 4486 section 4, subcode 1) and marks the peer PFX_CT, which the
// hold-down of maxprefix.go turns into a retry after max_prefix_restart. The
// re-created peer has no GoBGP limit again. Should GoBGP find the table
// back under the limit by then (withdrawals behind the count in the queue),
// it keeps the limit and enforces it itself until the session is
// re-created: correct, at GoBGP's per-UPDATE cost.

// prefixKey is a prefix in 24 bytes, without netip.Addr's zone pointer: a
// session keeps one per prefix.
type prefixKey struct {
	hi, lo uint64
	bits   uint8
}

func keyOf(p netip.Prefix) prefixKey {
	a := p.Addr().As16()
	var k prefixKey
	for i := range 8 {
		k.hi = k.hi<<8 | uint64(a[i])
		k.lo = k.lo<<8 | uint64(a[8+i])
	}
	k.bits = uint8(p.Bits())
	if p.Addr().Is4() {
		k.bits |= 0x80 // a v4 /n and its v4-mapped v6 twin stay apart
	}
	return k
}

// Bits of prefixCounts.flags.
const (
	flagReceived uint8 = 1 << iota
	flagAccepted
	// flagGen is the generation of a rebuild (bulkimport.go): every write
	// stamps the current one, and a rebuild sweeps what it did not stamp.
	flagGen
	// flagWatched marks, during a rebuild, a prefix the watch wrote. The
	// watch's word on it is newer than the walk's copy of the table, so
	// the walk leaves it alone; a withdrawal stays as an entry with no
	// other flag until the sweep removes it.
	flagWatched

	// flagsCounted are the flags the totals count.
	flagsCounted = flagReceived | flagAccepted
)

// prefixCounts is one session's prefixes as the update stream says.
// Guarded by Speaker.stateMu (it lives in prefixLimit).
type prefixCounts struct {
	flags              map[prefixKey]uint8
	received, accepted uint64
	// gen is flagGen or 0: the generation every write stamps.
	gen uint8
	// rebuilding is set from newGeneration to the sweep: the watch's
	// writes are marked flagWatched.
	rebuilding bool
	// tripped is set once Received passed the limit, until the session is
	// re-created.
	tripped bool
	// stale is set while the counts wait for a rebuild: from the start of
	// a full table's initial transfer (the watch is off for every
	// session), or from a reload that changed import, until a rebuild
	// that began after the last such mark (marks counts them) has walked
	// the session's table.
	stale bool
	marks uint64
}

// markStale records that the counts wait for a rebuild.
func (c *prefixCounts) markStale() {
	c.stale = true
	c.marks++
}

// setFlags records that key has exactly the flags want now, as the update
// stream says, and keeps the totals: one map read and at most one write.
func (c *prefixCounts) setFlags(key prefixKey, want uint8) {
	if c.flags == nil {
		c.flags = map[prefixKey]uint8{}
	}
	want &= flagsCounted
	old := c.flags[key]
	if c.rebuilding {
		stamped := want | c.gen | flagWatched
		if old != stamped {
			c.count(old, want)
			c.flags[key] = stamped
		}
		return
	}
	c.store(key, old, want)
}

// walkFlags records what a walk of the table found for key, unless the
// watch wrote key since the rebuild began: its word is newer.
func (c *prefixCounts) walkFlags(key prefixKey, want uint8) {
	if c.flags == nil {
		c.flags = map[prefixKey]uint8{}
	}
	old := c.flags[key]
	if old&flagWatched != 0 {
		return
	}
	c.store(key, old, want&flagsCounted)
}

// store replaces old, key's entry, with want stamped with the generation,
// or removes it when want is empty.
func (c *prefixCounts) store(key prefixKey, old, want uint8) {
	if old == want|c.gen || old == 0 && want == 0 {
		return
	}
	c.count(old, want)
	if want == 0 {
		delete(c.flags, key)
	} else {
		c.flags[key] = want | c.gen
	}
}

// count moves the totals from a prefix's old flags to want.
func (c *prefixCounts) count(old, want uint8) {
	step := func(n *uint64, flag uint8) {
		switch {
		case old&flag == 0 && want&flag != 0:
			*n++
		case old&flag != 0 && want&flag == 0:
			*n--
		}
	}
	step(&c.received, flagReceived)
	step(&c.accepted, flagAccepted)
}

// newGeneration starts a rebuild: from here every write stamps the new
// generation, and the watch's are marked.
func (c *prefixCounts) newGeneration() {
	c.gen ^= flagGen
	c.rebuilding = true
}

// sweep ends a rebuild: it removes every prefix no write stamped since
// newGeneration and the watch's withdrawals, and keeps the totals. When the
// walk did not read the whole table (walked false) the unstamped prefixes
// stay, stamped now, so that the next rebuild, which flips the generation
// back, still finds them unstamped.
func (c *prefixCounts) sweep(walked bool) {
	for key, f := range c.flags {
		switch {
		case f&flagGen != c.gen && walked:
			c.count(f, 0)
			delete(c.flags, key)
		case f&flagGen != c.gen:
			c.flags[key] = f&flagsCounted | c.gen
		case f&flagWatched == 0:
		case f&flagsCounted == 0:
			delete(c.flags, key)
		default:
			c.flags[key] = f &^ flagWatched
		}
	}
	c.rebuilding = false
}

// countPaths runs on a GoBGP watch goroutine: map updates only, and the
// limit handed off to a goroutine of its own.
func (s *Speaker) countPaths(paths []*apiutil.Path) {
	if len(paths) == 0 {
		return
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	var lim *prefixLimit
	var addr netip.Addr
	fromEdge := false
	for _, p := range paths {
		if p.PeerAddress != addr || lim == nil {
			addr = p.PeerAddress
			lim = s.limits[addr]
		}
		if lim == nil {
			continue // locally originated, or a peer deleted since
		}
		fromEdge = fromEdge || lim.filter.kind == filterEdge
		pfx, ok := nlriPrefix(p.Nlri)
		if !ok {
			continue
		}
		var flags uint8
		if !p.Withdrawal {
			flags = flagReceived
			if lim.filter.accepts(pfx, p.Attrs) {
				flags |= flagAccepted
			}
		}
		lim.counts.setFlags(keyOf(pfx), flags)
		if lim.max > 0 && lim.counts.received > uint64(lim.max) && !lim.counts.tripped {
			lim.counts.tripped = true
			go s.tripLimit(addr, lim.max)
		}
	}
	if fromEdge {
		// Another edge's states or default may have changed: SiteView
		// reads them from the RIB. GoBGP emits this event while it handles
		// the UPDATE, holding its table lock for reading, and SiteView's
		// read needs that lock for writing: the read sees the UPDATE.
		s.signalChanged()
	}
}

func nlriPrefix(n bgp.NLRI) (netip.Prefix, bool) {
	switch n := n.(type) {
	case *bgp.IPAddrPrefix: // both unicast families
		return n.Prefix, true
	}
	return netip.Prefix{}, false
}

// tripLimit makes GoBGP close the session to addr for max-prefix: it gives
// the peer the limit it was added without, and GoBGP, finding more, sends
// the Cease and marks the peer PFX_CT.
func (s *Speaker) tripLimit(addr netip.Addr, max uint32) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	p := s.peerConfs[addr]
	if s.srv == nil || p == nil {
		return
	}
	s.log.Warn("bgp: max-prefix exceeded; closing the session", keyPeer, addr, "max_prefixes", max)
	q := proto.Clone(p).(*api.Peer)
	for _, af := range q.AfiSafis {
		af.PrefixLimits = &api.PrefixLimit{Family: af.Config.Family, MaxPrefixes: max}
	}
	if _, err := s.srv.UpdatePeer(context.Background(), &api.UpdatePeerRequest{Peer: q}); err != nil {
		s.log.Error("bgp: close session for max-prefix", keyPeer, addr, "err", err)
	}
}

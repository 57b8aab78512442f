package bgp

import (
	"context"
	"net/netip"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"google.golang.org/protobuf/proto"
)

// The speaker counts each session's prefixes itself instead of setting
// GoBGP's PrefixLimit: GoBGP v4.8.0 checks that limit after every UPDATE by
// counting the whole Adj-RIB-In (AdjRib.Count copies every destination,
// osrg/gobgp#2215), so a full table took time in the square of its size.
// Here every UPDATE costs one map operation per prefix: two GoBGP watches
// deliver the update stream, one before import policy (what the ISP sent:
// Received) and one after it (what import accepted: Accepted). The watches
// run behind an unbounded queue, so the counts, and the limit, trail the
// import by that queue: the limit guards memory, not an exact number.
//
// The watches are most of what the counting costs, and GoBGP sets the
// price: v4.8.0 builds a copy of the peer's whole configuration for every
// event it queues (toConfig), once per UPDATE before policy and once per
// path after it. With a full table that is a third or more of the
// import's CPU and most of what it allocates, the Accepted watch the
// larger part once UPDATEs carry many prefixes (docs/benchmarks.md,
// "Where the time and memory go"). No GoBGP counter replaces either
// without a walk of the Adj-RIB-In.
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
)

// prefixCounts is one session's prefixes as the update stream says.
// Guarded by Speaker.stateMu (it lives in prefixLimit).
type prefixCounts struct {
	flags              map[prefixKey]uint8
	received, accepted uint64
	// tripped is set once Received passed the limit, until the session is
	// re-created.
	tripped bool
}

// set records whether key has the flag now and keeps the totals.
func (c *prefixCounts) set(key prefixKey, flag uint8, on bool) {
	if c.flags == nil {
		c.flags = map[prefixKey]uint8{}
	}
	old := c.flags[key]
	had := old&flag != 0
	if had == on {
		return
	}
	n := &c.received
	if flag == flagAccepted {
		n = &c.accepted
	}
	if on {
		c.flags[key] = old | flag
		*n++
		return
	}
	*n--
	if old &^= flag; old == 0 {
		delete(c.flags, key)
	} else {
		c.flags[key] = old
	}
}

// watchCounts starts the two update watches that keep the counts.
func (s *Speaker) watchCounts(ctx context.Context) error {
	// The pre-policy stream and GoBGP's own withdrawals of Adj-RIB-In (peer
	// down, graceful-restart expiry) share one watcher, so they stay in
	// order.
	received := server.WatchEventMessageCallbacks{OnPathUpdate: func(ps []*apiutil.Path, _ time.Time) { s.countPaths(ps, flagReceived) }}
	if err := s.srv.WatchEvent(ctx, received, server.WatchUpdate(false, "", ""), server.WatchAdjInWithdraw()); err != nil {
		return err
	}
	accepted := server.WatchEventMessageCallbacks{OnPathUpdate: func(ps []*apiutil.Path, _ time.Time) { s.countPaths(ps, flagAccepted) }}
	return s.srv.WatchEvent(ctx, accepted, server.WatchPostUpdate(false, "", ""))
}

// countPaths runs on a GoBGP watch goroutine: map updates only, and the
// limit handed off to a goroutine of its own.
func (s *Speaker) countPaths(paths []*apiutil.Path, flag uint8) {
	if len(paths) == 0 {
		return
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	var lim *prefixLimit
	var addr netip.Addr
	for _, p := range paths {
		if p.PeerAddress != addr || lim == nil {
			addr = p.PeerAddress
			lim = s.limits[addr]
		}
		if lim == nil {
			continue // locally originated, or a peer deleted since
		}
		pfx, ok := nlriPrefix(p.Nlri)
		if !ok {
			continue
		}
		lim.counts.set(keyOf(pfx), flag, !p.Withdrawal)
		if flag == flagReceived && lim.max > 0 && lim.counts.received > uint64(lim.max) && !lim.counts.tripped {
			lim.counts.tripped = true
			go s.tripLimit(addr, lim.max)
		}
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

package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/multihomed/multihomed/config"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// A full table's initial transfer is imported without the pre-policy
// update watch. GoBGP v4.8.0 builds a copy of the peer's configuration
// for every event of that watch, once per UPDATE, and with a real table,
// where almost every prefix has a path of its own, that is a third to a
// half of the import's CPU (docs/benchmarks.md, "What the update watch
// costs"). So, from the moment a session with import: full is established
// until it has sent End-of-RIB (or its table stops growing), the speaker:
//
//   - drops the watch, for every session (GoBGP has one stream for all);
//   - guards max-prefix with GoBGP's own count of each session's
//     Adj-RIB-In, read every tick. The read copies each destination and
//     holds GoBGP's main loop, and so every session's UPDATEs, meanwhile:
//     the ticks are spaced at two hundred times the read's duration, but
//     no further apart than a session needs to reach its limit growing at
//     twice its rate since the last read (a session in its transfer, at
//     twice the fastest session's rate: it may not have started yet); at
//     ten times once one could reach it before; at most ten seconds
//     (nextBulkRead);
//   - reports that count as Received for the sessions in transfer, and
//     keeps Accepted as it was: Accepted is counted at the end. Status
//     says receiving (routing.ImportReceiving) until a session's transfer
//     has ended, then counting (every route it sent is in the RIB: GoBGP
//     handles a session's messages in order, End-of-RIB after the
//     UPDATEs before it) until the rebuild has counted both;
//   - wakes the controller four times a second while another edge is a
//     peer, since the edge's UPDATEs no longer do.
//
// At the end the watch is started again, then every session's Adj-RIB-In
// is walked once and the counts rebuilt: each write stamps the current
// generation, the walk's and the watch's alike, and what neither stamped
// (withdrawn meanwhile) is swept. The walk reads a copy GoBGP took as it
// began, so a prefix the watch wrote since keeps the watch's flags, and a
// change the watch delivers after the walk wrote is applied over it, in
// order: the counts end where the tables are.

const (
	// bulkTickMin is the shortest spacing of the max-prefix reads.
	bulkTickMin = time.Second
	// bulkTickShare spaces the ticks at this many times the last read's
	// duration, at least bulkTickMin, while a session is near its limit.
	bulkTickShare = 10
	// bulkTickFar spaces them at this many times the read while every
	// session is far from its limit.
	bulkTickFar = 200
	// bulkTickMax is the widest spacing, near a limit or far: a session's
	// growth so far says little about the next seconds at the start of a
	// transfer (TCP, the peer's own pace), so a session may go over its
	// limit by what it imports in that time before a read finds it.
	bulkTickMax = 10 * time.Second
	// bulkQuietTicks ends a session's transfer when its count has not
	// changed for this many ticks (a peer that sends no End-of-RIB).
	bulkQuietTicks = 2
	// bulkEdgeWake is how often the controller is woken during a transfer
	// while another edge is a peer: its UPDATEs, which wake the controller
	// otherwise, come on the stopped watch.
	bulkEdgeWake = 250 * time.Millisecond
)

// bulkImport is the speaker's state for initial transfers. Guarded by
// Speaker.stateMu, but for mu.
type bulkImport struct {
	srv  *server.BgpServer
	base context.Context // the speaker's watch context
	// mu serializes stopping and starting the watch, and the rebuild.
	mu sync.Mutex
	// countCancel stops the pre-policy watch; nil while it is stopped.
	countCancel context.CancelFunc
	// active is set while a runner goroutine owns the transfer.
	active bool
	// initial holds the sessions in their initial transfer, each with its
	// last count and how many ticks it has not changed.
	initial map[netip.Addr]*transfer
	// received is GoBGP's count of each session's Adj-RIB-In at the last
	// tick, until the rebuild; lastTick is when that tick read them.
	received map[netip.Addr]uint64
	lastTick time.Time
	// reads and reading are how many reads the ticks made since the last
	// rebuild, and the time they took.
	reads   int
	reading time.Duration
	// wake tells the runner that a transfer ended.
	wake chan struct{}
}

type transfer struct {
	last  uint64
	quiet int
}

func newBulkImport(srv *server.BgpServer, base context.Context) *bulkImport {
	return &bulkImport{srv: srv, base: base, initial: map[netip.Addr]*transfer{}, received: map[netip.Addr]uint64{}, wake: make(chan struct{}, 1)}
}

// startCountWatch starts the pre-policy watch. b.mu must be held.
func (s *Speaker) startCountWatch(b *bulkImport) error {
	ctx, cancel := context.WithCancel(b.base)
	// The pre-policy stream and GoBGP's own withdrawals of Adj-RIB-In (peer
	// down, graceful-restart expiry) share one watcher, so they stay in
	// order.
	received := server.WatchEventMessageCallbacks{OnPathUpdate: func(ps []*apiutil.Path, _ time.Time) { s.countPaths(ps) }}
	if err := b.srv.WatchEvent(ctx, received, server.WatchUpdate(false, "", ""), server.WatchAdjInWithdraw()); err != nil {
		cancel()
		return err
	}
	b.countCancel = cancel
	return nil
}

// transferStartedLocked notes that addr came up; a session that imports a
// full table starts a bulk transfer. stateMu must be held.
func (s *Speaker) transferStartedLocked(addr netip.Addr) {
	b, lim := s.bulk, s.limits[addr]
	if b == nil || lim == nil || lim.filter.kind != filterUplink || lim.filter.mode != config.ImportFull {
		return
	}
	b.initial[addr] = &transfer{}
	for _, l := range s.limits {
		l.counts.markStale() // the watch stops for every session
	}
	if !b.active {
		b.active = true
		go s.runBulk(b)
	}
}

// transferEndedLocked notes that addr is done with its transfer, and why
// (End-of-RIB, its table went quiet, the session went down). stateMu must
// be held.
func (s *Speaker) transferEndedLocked(addr netip.Addr, why string) {
	b := s.bulk
	if b == nil || b.initial[addr] == nil {
		return
	}
	s.log.Info("bgp: initial transfer of a session over", keyPeer, addr, "why", why)
	delete(b.initial, addr)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// onEor ends the transfer of the session that sent End-of-RIB.
func (s *Speaker) onEor(p *apiutil.Path, _ time.Time) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.transferEndedLocked(p.PeerAddress, "End-of-RIB")
}

// runBulk owns one bulk transfer: it stops the watch, guards max-prefix
// until every session in transfer is done, then starts the watch again and
// rebuilds the counts.
func (s *Speaker) runBulk(b *bulkImport) {
	b.mu.Lock()
	if b.countCancel != nil {
		b.countCancel()
		b.countCancel = nil
	}
	b.mu.Unlock()
	s.log.Info("bgp: a full table's initial transfer: counting from GoBGP's table until End-of-RIB")
	start := time.Now()
	tick := time.NewTimer(bulkTickMin)
	defer tick.Stop()
	edgeWake := time.NewTicker(bulkEdgeWake)
	defer edgeWake.Stop()
	for {
		select {
		case <-b.base.Done():
			return
		case <-b.wake: // a transfer ended: done, perhaps
		case <-edgeWake.C:
			if s.hasEdgePeer() {
				s.signalChanged()
			}
			continue
		case <-tick.C:
			tick.Reset(s.readTables(b))
		}
		s.stateMu.Lock()
		done := len(b.initial) == 0
		if done {
			b.active = false
		}
		s.stateMu.Unlock()
		if done {
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s.stateMu.Lock()
	again := b.active // a session came up since: its runner rebuilds
	s.stateMu.Unlock()
	if again || b.base.Err() != nil {
		return
	}
	if err := s.startCountWatch(b); err != nil {
		if b.base.Err() == nil {
			s.log.Error("bgp: restart the update watch after a bulk transfer; prefix counts stop", "err", err)
		}
		return
	}
	walk := time.Now()
	if err := s.rebuildCounts(b); err != nil && b.base.Err() == nil {
		s.log.Error("bgp: rebuild the prefix counts after a bulk transfer", "err", err)
	}
	s.stateMu.Lock()
	reads, reading := b.reads, b.reading
	b.reads, b.reading, b.lastTick = 0, 0, time.Time{}
	s.stateMu.Unlock()
	s.log.Info("bgp: initial transfer done; counting from the update stream again", "took", time.Since(start).Round(time.Millisecond),
		"table_reads", reads, "reading", reading.Round(time.Millisecond), "recount", time.Since(walk).Round(time.Millisecond))
}

// readTables reads GoBGP's count of every session's Adj-RIB-In, enforces
// max-prefix on it and ends the transfers that went quiet. It returns when
// the next tick is due.
func (s *Speaker) readTables(b *bulkImport) time.Duration {
	s.stateMu.Lock()
	addrs := make([]netip.Addr, 0, len(s.limits))
	for addr := range s.limits {
		addrs = append(addrs, addr)
	}
	s.stateMu.Unlock()
	began := time.Now()
	counts := map[netip.Addr]uint64{}
	for _, addr := range addrs {
		if n, err := adjInCount(b.srv, addr); err == nil {
			counts[addr] = n
		}
	}
	took := time.Since(began)
	s.stateMu.Lock()
	b.reads++
	b.reading += took
	since := began.Sub(b.lastTick)
	if b.lastTick.IsZero() {
		since = 0
	}
	b.lastTick = began
	growth := make([]sessionGrowth, 0, len(counts))
	for addr, n := range counts {
		lim := s.limits[addr]
		if lim == nil {
			continue
		}
		if lim.max > 0 {
			prev, ok := b.received[addr]
			if !ok {
				prev = n // first read: no growth known
			}
			growth = append(growth, sessionGrowth{prev: prev, now: n, max: uint64(lim.max), over: since, transfer: b.initial[addr] != nil})
		}
		b.received[addr] = n
		if lim.max > 0 && n > uint64(lim.max) && !lim.counts.tripped {
			lim.counts.tripped = true
			go s.tripLimit(addr, lim.max)
		}
		if t := b.initial[addr]; t != nil {
			if n == t.last {
				t.quiet++
			} else {
				t.last, t.quiet = n, 0
			}
			if t.quiet >= bulkQuietTicks {
				s.transferEndedLocked(addr, "its table stopped growing (no End-of-RIB)")
			}
		}
	}
	s.stateMu.Unlock()
	return nextBulkRead(took, growth)
}

// sessionGrowth is one session's table at two reads: prev, then now, over
// the given time; max is its limit, and transfer is set while it is in
// its initial transfer.
type sessionGrowth struct {
	prev, now, max uint64
	over           time.Duration
	transfer       bool
}

// nextBulkRead spaces the transfer's reads: bulkTickFar times took while
// no session could reach its limit by then, otherwise as soon as one could
// (less took: the next read starts that long after the wait), but never
// closer than bulkTickShare times took or bulkTickMin, and never further
// apart than bulkTickMax. A session could grow at twice its own rate
// between its last two reads; one in its initial transfer at twice the
// fastest rate of any session, because it may not have started yet: a
// peer commonly sends one family's table, then the other's.
func nextBulkRead(took time.Duration, growth []sessionGrowth) time.Duration {
	near := max(bulkTickMin, bulkTickShare*took)
	next := max(bulkTickMin, bulkTickFar*took)
	rate := func(g sessionGrowth) float64 { // routes per nanosecond
		if g.now <= g.prev || g.over <= 0 {
			return 0
		}
		return float64(g.now-g.prev) / float64(g.over)
	}
	var fastest float64
	for _, g := range growth {
		if g.now > g.prev && g.over <= 0 {
			return near // grew, at a rate unknown
		}
		fastest = max(fastest, rate(g))
	}
	for _, g := range growth {
		r := rate(g)
		if g.transfer {
			r = fastest
		}
		switch {
		case g.now >= g.max:
			return near
		case r > 0:
			next = min(next, time.Duration(float64(g.max-g.now)/(2*r))-took)
		}
	}
	return min(max(next, near), bulkTickMax)
}

// hasEdgePeer reports whether another edge of the site is a peer.
func (s *Speaker) hasEdgePeer() bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	for _, lim := range s.limits {
		if lim.filter.kind == filterEdge {
			return true
		}
	}
	return false
}

// adjInCount is GoBGP's count of addr's Adj-RIB-In (one walk).
func adjInCount(srv *server.BgpServer, addr netip.Addr) (uint64, error) {
	fam := &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	if addr.Is4() {
		fam.Afi = api.Family_AFI_IP
	}
	r, err := srv.GetTable(context.Background(), &api.GetTableRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: addr.String(), Family: fam})
	if err != nil {
		return 0, err
	}
	return r.NumPath, nil
}

// rebuildCounts walks every session's Adj-RIB-In once, the watch running,
// and sweeps what the walk and the watch did not stamp. b.mu must be held.
//
// The walk reads a copy of the table that GoBGP took as it began, so what
// it finds may be older than what the watch has written meanwhile: a
// prefix the watch wrote since the rebuild began keeps the watch's flags
// (walkFlags), and whatever the walk writes, the watch's later events
// overwrite in order.
func (s *Speaker) rebuildCounts(b *bulkImport) error {
	// The limits the rebuild started on: a session deleted and added again
	// meanwhile has a new one, which the walk of the old must not fill.
	s.stateMu.Lock()
	lims := make(map[netip.Addr]*prefixLimit, len(s.limits))
	marks := make(map[netip.Addr]uint64, len(s.limits))
	for addr, lim := range s.limits {
		lims[addr], marks[addr] = lim, lim.counts.marks
		lim.counts.newGeneration()
		if n := b.received[addr]; len(lim.counts.flags) == 0 && n > 0 {
			// Filled from nothing (the watch was off since the session
			// came up): made at its final size, not grown by doubling.
			lim.counts.flags = make(map[prefixKey]uint8, n)
		}
	}
	s.stateMu.Unlock()
	var errs []error
	walked := map[netip.Addr]bool{}
	for addr, lim := range lims {
		if err := s.rebuildSession(b.srv, addr, lim); err != nil {
			errs = append(errs, fmt.Errorf("bgp: walk the table of %s: %w", addr, err))
			continue
		}
		walked[addr] = true
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	for addr, lim := range lims {
		delete(b.received, addr)
		if s.limits[addr] != lim {
			continue // deleted since (and perhaps added again)
		}
		c := &lim.counts
		c.sweep(walked[addr]) // unwalked: its old entries stay until they change
		if walked[addr] && c.marks == marks[addr] {
			c.stale = false // no transfer or reload since the walk began
		}
		if lim.max > 0 && c.received > uint64(lim.max) && !c.tripped {
			c.tripped = true
			go s.tripLimit(addr, lim.max)
		}
	}
	return errors.Join(errs...)
}

// recountAfterReload rebuilds every session's counts with the import
// filters a reload has just set. It runs on its own goroutine: with a full
// table the walk takes seconds, and the reload holds opMu, which
// announcement changes (a failover's among them) wait for. While a
// transfer runs it does nothing: the transfer's end rebuilds with the new
// filters.
func (s *Speaker) recountAfterReload(b *bulkImport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.stateMu.Lock()
	if s.recountQueued == b {
		s.recountQueued = nil // a reload from here on queues another
	}
	run := !b.active && b.countCancel != nil && b.base.Err() == nil
	s.recountRunning = run
	s.stateMu.Unlock()
	if !run {
		return
	}
	defer func() {
		s.stateMu.Lock()
		s.recountRunning = false
		s.stateMu.Unlock()
	}()
	took := time.Now()
	if err := s.rebuildCounts(b); err != nil {
		if b.base.Err() == nil {
			s.log.Error("bgp: recount the prefixes after a reload that changed import", "err", err)
		}
		return
	}
	s.log.Info("bgp: prefixes recounted with the reloaded import rules", "took", time.Since(took).Round(time.Millisecond))
}

// rebuildSession walks addr's Adj-RIB-In and writes what it finds into
// lim, the session's counts, while lim is still the session's.
func (s *Speaker) rebuildSession(srv *server.BgpServer, addr netip.Addr, lim *prefixLimit) error {
	fam := bgp.RF_IPv6_UC
	if addr.Is4() {
		fam = bgp.RF_IPv4_UC
	}
	return srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: addr.String(), Family: fam}, func(_ bgp.NLRI, paths []*apiutil.Path) {
		s.stateMu.Lock()
		defer s.stateMu.Unlock()
		if s.limits[addr] != lim {
			return
		}
		for _, p := range paths {
			if pfx, ok := nlriPrefix(p.Nlri); ok && !p.Withdrawal {
				flags := flagReceived
				if lim.filter.accepts(pfx, p.Attrs) {
					flags |= flagAccepted
				}
				lim.counts.walkFlags(keyOf(pfx), flags)
			}
		}
	})
}

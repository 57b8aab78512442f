package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// BestRoute is a change of the best path to a prefix, as Options.OnBest
// reports it.
type BestRoute struct {
	Prefix netip.Prefix
	// Uplink is the uplink whose session now has the best path; "" when
	// no uplink has it any more (withdrawn, or the best path is the site's
	// own or an internal peer's).
	Uplink string
}

// onBest runs on a GoBGP watch goroutine for every best-path change of the
// RIB (after import policy): it names the uplink and hands the batch to
// Options.OnBest, which must not block; the first delivery of a replay
// (snapshot: every best path there is) goes to Options.OnBestSnapshot.
// A delivery of a watch that a replay replaced (gen is not bestGen any
// more) is dropped: the replay's snapshot is newer.
func (s *Speaker) onBest(gen uint64, snapshot bool, paths []*apiutil.Path) {
	out := make([]BestRoute, 0, len(paths))
	s.stateMu.Lock()
	for _, p := range paths {
		pfx, ok := nlriPrefix(p.Nlri)
		if !ok {
			continue
		}
		br := BestRoute{Prefix: pfx}
		if st, ok := s.states[p.PeerAddress]; ok && !st.Internal && !p.Withdrawal {
			br.Uplink = st.Uplink
		}
		out = append(out, br)
	}
	s.stateMu.Unlock()
	s.bestMu.Lock()
	defer s.bestMu.Unlock()
	switch {
	case gen != s.bestGen:
	case snapshot:
		s.opts.OnBestSnapshot(out)
	case len(out) > 0:
		s.opts.OnBest(out)
	}
}

// startBestWatchLocked starts a best-path watch of a new generation and
// stops the one before. With current set GoBGP first delivers every best
// path there is (its snapshot, taken on its main loop), then the changes,
// in one ordered stream. opMu held.
func (s *Speaker) startBestWatchLocked(current bool) error {
	s.bestMu.Lock()
	s.bestGen++
	gen := s.bestGen
	s.bestMu.Unlock()
	ctx, cancel := context.WithCancel(s.watchCtx)
	first := current // only the watch's one delivery goroutine reads it
	err := s.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnBestPath: func(paths []*apiutil.Path, _ time.Time) {
		snapshot := first
		first = false
		s.onBest(gen, snapshot, paths)
	}}, server.WatchBestPath(current))
	if err != nil {
		cancel()
		return err
	}
	if s.bestCancel != nil {
		s.bestCancel()
	}
	s.bestCancel = cancel
	return nil
}

// ReplayBest delivers every current best path again, to
// Options.OnBestSnapshot, then the changes after it to Options.OnBest as
// before: for a consumer that lost what it had made of them (the kernel
// deleted bgp.install's routes with a nexthop group). Deliveries of the
// watch it replaces that were still queued are dropped: the snapshot is
// newer. It needs both options set.
func (s *Speaker) ReplayBest() error {
	if s.opts.OnBest == nil || s.opts.OnBestSnapshot == nil {
		return errors.New("bgp: ReplayBest needs Options.OnBest and Options.OnBestSnapshot")
	}
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil || s.watchCtx == nil {
		return errors.New("bgp: speaker not started")
	}
	if err := s.startBestWatchLocked(true); err != nil {
		return fmt.Errorf("bgp: replay best paths: %w", err)
	}
	return nil
}

package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// RIBWatch polls routers for prefixes learned from given neighbors and
// records every poll that broke the expectation: a router that did not
// hold a watched path (the proof that a restart never took the site's
// prefix out of an ISP's RIB; stale marking is allowed, only absence
// counts), or held a path it must never hold.
type RIBWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	polls  int
	gaps   []RIBGap
	errors int
}

// RIBGap is one poll that broke the expectation.
type RIBGap struct {
	Router string
	Prefix netip.Prefix
	At     time.Time
}

// RIBWatched is a router, a prefix and the neighbor whose path to watch.
type RIBWatched struct {
	Router Router
	Prefix netip.Prefix
	From   netip.Addr
	// Never inverts the expectation: the router must never hold the path.
	Never bool
}

// WatchRIB polls every router for its prefix from its neighbor every
// interval until Stop. A poll whose router query fails counts as an error, not a gap (a
// loaded vtysh can time out; the caller bounds errors separately).
func WatchRIB(every time.Duration, watched ...RIBWatched) *RIBWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &RIBWatch{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, r := range watched {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
				paths, err := r.Router.Paths(qctx, r.Prefix)
				qcancel()
				if ctx.Err() != nil {
					return
				}
				held := false
				for _, path := range paths {
					held = held || path.From == r.From
				}
				w.mu.Lock()
				w.polls++
				switch {
				case err != nil:
					w.errors++
				case held == r.Never:
					w.gaps = append(w.gaps, RIBGap{Router: r.Router.Name(), Prefix: r.Prefix, At: time.Now()})
				}
				w.mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(w.done) }()
	return w
}

// RIBWatchResult is what a watch saw.
type RIBWatchResult struct {
	// Polls counts the router queries made, Errors the ones that failed.
	Polls, Errors int
	// Gaps lists the polls that broke the expectation: a watched path
	// absent, or a Never path present.
	Gaps []RIBGap
}

// String sums the watch up: polls, failed polls, polls not as expected.
func (r RIBWatchResult) String() string {
	return fmt.Sprintf("%d polls, %d failed, %d not as expected", r.Polls, r.Errors, len(r.Gaps))
}

// Stop ends the watch and returns what it saw.
func (w *RIBWatch) Stop() RIBWatchResult {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return RIBWatchResult{Polls: w.polls, Errors: w.errors, Gaps: w.gaps}
}

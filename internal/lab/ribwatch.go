package lab

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// RIBWatch polls routers for one prefix learned from given neighbors and
// records every poll in which a router did not hold it: the proof that a
// restart never took the site's prefix out of an ISP's RIB (stale marking
// is allowed; only absence counts).
type RIBWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	polls  int
	gaps   []RIBGap
	errors int
}

// RIBGap is one poll in which a router did not hold the prefix.
type RIBGap struct {
	Router string
	At     time.Time
}

// RIBWatched is a router and the neighbor whose path to watch.
type RIBWatched struct {
	Router Router
	From   netip.Addr
}

// WatchRIB polls every router for p from its neighbor every interval until
// Stop. A poll whose router query fails counts as an error, not a gap (a
// loaded vtysh can time out; the caller bounds errors separately).
func WatchRIB(p netip.Prefix, every time.Duration, watched ...RIBWatched) *RIBWatch {
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
				paths, err := r.Router.Paths(qctx, p)
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
				case !held:
					w.gaps = append(w.gaps, RIBGap{Router: r.Router.Name(), At: time.Now()})
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
	// Gaps lists the polls in which a router did not hold the prefix.
	Gaps []RIBGap
}

func (r RIBWatchResult) String() string {
	return fmt.Sprintf("%d polls, %d failed, %d without the prefix", r.Polls, r.Errors, len(r.Gaps))
}

// Stop ends the watch and returns what it saw.
func (w *RIBWatch) Stop() RIBWatchResult {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return RIBWatchResult{Polls: w.polls, Errors: w.errors, Gaps: w.gaps}
}

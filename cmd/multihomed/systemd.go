package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/multihomed/multihomed/internal/sdnotify"
)

// readyPoll is how often the daemon checks whether the controller has made
// its first decision, until it has.
const readyPoll = 100 * time.Millisecond

// loopLiveness is what the systemd notifications need of the controller
// loop (controller.Loop).
type loopLiveness interface {
	Ready() bool
	Alive(ctx context.Context) error
}

// systemd speaks sd_notify for the daemon: READY=1 after the first
// decision, the watchdog while the loop answers, RELOADING=1 around SIGHUP
// and STOPPING=1 at the end. Outside systemd every method is a no-op.
type systemd struct {
	n        *sdnotify.Notifier
	watchdog time.Duration
	log      *slog.Logger
	// ready is set once READY=1 was sent: a reload before that must not
	// announce readiness.
	ready atomic.Bool
}

// newSystemd reads $NOTIFY_SOCKET and $WATCHDOG_USEC. A malformed one is
// logged and that part is left off: the daemon routes without systemd's
// bookkeeping rather than not at all.
func newSystemd(log *slog.Logger) *systemd {
	s := &systemd{log: log}
	var err error
	if s.n, err = sdnotify.FromEnv(); err != nil {
		log.Error("systemd notifications off", "error", err)
		s.n = nil
	}
	if s.watchdog, err = sdnotify.WatchdogInterval(); err != nil {
		log.Error("systemd watchdog off", "error", err)
	}
	return s
}

// run waits for the loop's first decision, tells systemd READY=1, pings
// the watchdog while the loop answers and says STOPPING=1 when ctx ends.
func (s *systemd) run(ctx context.Context, loop loopLiveness) error {
	if !s.n.Enabled() {
		return nil
	}
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	if !s.waitReady(ctx, loop, t.C) {
		s.notify(sdnotify.Stopping)
		return nil
	}
	t.Stop()
	s.ready.Store(true)
	s.notify(sdnotify.Ready, "STATUS=routing: the first decision is applied")
	s.log.Info("systemd: ready", "watchdog", s.watchdog)
	err := s.n.RunWatchdog(ctx, s.watchdog, loop.Alive, s.log)
	s.notify(sdnotify.Stopping)
	return err
}

// waitReady returns true once loop is ready, checked at each tick, and
// false when ctx ends first.
func (s *systemd) waitReady(ctx context.Context, loop loopLiveness, ticks <-chan time.Time) bool {
	for !loop.Ready() {
		select {
		case <-ctx.Done():
			return false
		case <-ticks:
		}
	}
	return true
}

// reloading is called when SIGHUP arrives, reloaded when the reload is
// over (accepted or refused: the daemon runs either way). Before the first
// READY=1 both stay silent.
func (s *systemd) reloading() {
	if s.ready.Load() {
		s.notify(sdnotify.ReloadingNow()...)
	}
}

func (s *systemd) reloaded() {
	if s.ready.Load() {
		s.notify(sdnotify.Ready)
	}
}

func (s *systemd) notify(lines ...string) {
	if err := s.n.Notify(lines...); err != nil {
		s.log.Warn("systemd notification not sent", "error", err)
	}
}

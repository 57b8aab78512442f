package sdnotify

import (
	"context"
	"log/slog"
	"time"
)

// RunWatchdog sends WATCHDOG=1 every interval/2 while alive succeeds, until
// ctx ends (it then returns nil). Each alive call gets interval/2 to answer:
// when it fails no ping is sent, and systemd restarts the service once
// interval passes without one. A no-op Notifier or interval 0 only waits
// for ctx.
func (n *Notifier) RunWatchdog(ctx context.Context, interval time.Duration, alive func(context.Context) error, log *slog.Logger) error {
	if !n.Enabled() || interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	return n.watchdog(ctx, interval/2, t.C, alive, log)
}

// watchdog is RunWatchdog with the ticks injected.
func (n *Notifier) watchdog(ctx context.Context, wait time.Duration, ticks <-chan time.Time, alive func(context.Context) error, log *slog.Logger) error {
	healthy := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
		actx, cancel := context.WithTimeout(ctx, wait)
		err := alive(actx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// Logged on the transition only: a stuck loop would
			// otherwise log every tick until systemd kills us.
			if healthy {
				log.Error("watchdog: the controller loop does not answer; withholding the systemd watchdog ping (systemd restarts the daemon when WatchdogSec passes)", "error", err)
			}
			healthy = false
			continue
		}
		if !healthy {
			log.Info("watchdog: the controller loop answers again")
		}
		healthy = true
		if err := n.Notify(Watchdog); err != nil {
			log.Warn("watchdog: ping not sent", "error", err)
		}
	}
}

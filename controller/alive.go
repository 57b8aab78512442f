package controller

import "context"

// Alive round-trips a no-op command through the loop goroutine. It returns
// nil once the loop has taken and answered it, and ctx's error when the
// loop did not within ctx: it is stuck in a pass (an applier that never
// returns) or not running. The systemd watchdog pings only while Alive
// succeeds, so a stuck loop gets the daemon restarted. Like every command
// it is followed by one (idempotent) pass, so the next Alive also waits for
// that pass to finish. Safe for concurrent use.
func (l *Loop) Alive(ctx context.Context) error {
	c := command{kind: cmdAlive, reply: make(chan error, 1)}
	select {
	case l.cmds <- c:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ready reports whether the loop has published a decision that is not the
// startup wait: the speaker and the kernel were handed what to announce
// and route (an apply error is retried and shows in Status.ApplyError).
// It is the daemon's READY=1 for systemd and matches /readyz. Safe for
// concurrent use.
func (l *Loop) Ready() bool {
	st := l.Status()
	return st.Passes > 0 && !st.Desired.Waiting
}

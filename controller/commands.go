package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/multihomed/multihomed/config"
)

// ErrUnknownUplink is returned for a command naming no configured uplink.
var ErrUnknownUplink = errors.New("no such uplink")

// ErrNotDrained is returned by Undrain for an uplink whose override is not
// a drain (a force-down or a prepend): undrain must not lift it.
var ErrNotDrained = errors.New("the uplink's override is not a drain")

type commandKind int

const (
	cmdSetOverride commandKind = iota
	cmdClearOverride
	cmdUndrain
	cmdReload
	cmdAlive // no-op round trip (Alive)
)

type command struct {
	kind     commandKind
	uplink   string
	override Override
	duration time.Duration // of the override; 0: until cleared
	cfg      *config.Config
	// wasDrained receives Undrain's answer before reply is sent.
	wasDrained *bool
	reply      chan error
}

// Drain starts draining uplink (GRACEFUL_SHUTDOWN, then withdrawal after
// the drain grace) for d (0: until Undrain). The override is saved in the
// state directory before Drain returns.
func (l *Loop) Drain(ctx context.Context, uplink, reason, who string, d time.Duration) error {
	o := Override{Drain: true, Reason: reason, Who: who}
	return l.send(ctx, command{kind: cmdSetOverride, uplink: uplink, override: o}, d)
}

// ForceDown withdraws uplink and removes its egress for d (0: until
// cleared).
func (l *Loop) ForceDown(ctx context.Context, uplink, reason, who string, d time.Duration) error {
	o := Override{ForceDown: true, Reason: reason, Who: who}
	return l.send(ctx, command{kind: cmdSetOverride, uplink: uplink, override: o}, d)
}

// Prepend adds n extra prepends to every announcement to uplink for d.
func (l *Loop) Prepend(ctx context.Context, uplink string, n uint8, reason, who string, d time.Duration) error {
	if n > config.MaxPrepend {
		return fmt.Errorf("controller: prepend %d is above the maximum %d", n, config.MaxPrepend)
	}
	o := Override{ExtraPrepend: n, Reason: reason, Who: who}
	return l.send(ctx, command{kind: cmdSetOverride, uplink: uplink, override: o}, d)
}

// ClearOverride removes every override on uplink (undrain).
func (l *Loop) ClearOverride(ctx context.Context, uplink string) error {
	return l.send(ctx, command{kind: cmdClearOverride, uplink: uplink}, 0)
}

// Undrain ends a drain on uplink. It reports whether a drain was in force;
// an uplink holding another kind of override gets ErrNotDrained and keeps
// it. The check and the removal happen together on the loop, so a
// force-down set meanwhile is never lifted by mistake.
func (l *Loop) Undrain(ctx context.Context, uplink string) (bool, error) {
	c := command{kind: cmdUndrain, uplink: uplink, reply: make(chan error, 1), wasDrained: new(bool)}
	select {
	case l.cmds <- c:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case err := <-c.reply:
		return *c.wasDrained, err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Reload applies a new, already validated configuration.
func (l *Loop) Reload(ctx context.Context, cfg *config.Config) error {
	return l.send(ctx, command{kind: cmdReload, cfg: cfg}, 0)
}

func (l *Loop) send(ctx context.Context, c command, d time.Duration) error {
	c.reply = make(chan error, 1)
	if d < 0 {
		return fmt.Errorf("controller: duration %s is negative", d)
	}
	c.duration = d
	select {
	case l.cmds <- c:
	case <-ctx.Done():
		return ctx.Err()
	}
	// The loop answers every command it takes, promptly: once taken, the
	// caller learns the outcome whatever ctx does (an error here after the
	// command was applied would make callers act on a wrong answer).
	return <-c.reply
}

// handle runs a command on the loop goroutine.
func (l *Loop) handle(ctx context.Context, c command) error {
	if c.kind == cmdAlive {
		return nil
	}
	now := l.now()
	switch c.kind {
	case cmdSetOverride, cmdClearOverride, cmdUndrain:
		if !l.hasUplink(c.uplink) {
			return fmt.Errorf("controller: %q: %w", c.uplink, ErrUnknownUplink)
		}
		next := make(map[string]Override, len(l.overrides))
		for k, v := range l.overrides {
			next[k] = v
		}
		if c.kind == cmdUndrain {
			o, ok := next[c.uplink]
			if ok && !o.Drain {
				return fmt.Errorf("controller: %s: %w (force-down %v, prepend %d); clear the override instead", c.uplink, ErrNotDrained, o.ForceDown, o.ExtraPrepend)
			}
			*c.wasDrained = ok
			if !ok {
				return nil // nothing to do, nothing to save
			}
			delete(next, c.uplink)
		} else if c.kind == cmdClearOverride {
			delete(next, c.uplink)
		} else {
			o := c.override
			o.Since = now
			if c.duration > 0 {
				o.Expires = now.Add(c.duration)
			}
			next[c.uplink] = o
		}
		// Persist first: an override the daemon would forget on restart
		// is refused rather than half applied.
		if err := saveOverrides(l.cfg.Controller.StateDir, next); err != nil {
			return err
		}
		l.overrides = next
		l.log.Info("override changed", "uplink", c.uplink, "override", fmt.Sprintf("%+v", next[c.uplink]), "cleared", c.kind == cmdClearOverride)
	case cmdReload:
		if err := l.deps.Speaker.Reconfigure(ctx, c.cfg); err != nil {
			if c.cfg.Node != l.cfg.Node || c.cfg.BGP.ListenPort != l.cfg.BGP.ListenPort {
				return err // refused whole
			}
			l.log.Error("reload: applying to the speaker", "error", err)
		}
		if eg, ok := l.deps.Egress.(egressRetargeter); ok &&
			(c.cfg.Egress.Table != l.cfg.Egress.Table || c.cfg.Egress.Protocol != l.cfg.Egress.Protocol) {
			// The next pass installs the routes in the new table (or with
			// the new protocol) before it removes the old ones.
			if err := eg.Retarget(c.cfg.Egress.Table, c.cfg.Egress.Protocol); err != nil {
				l.log.Error("reload: egress table/protocol unchanged", "error", err)
				c.cfg.Egress.Table, c.cfg.Egress.Protocol = l.cfg.Egress.Table, l.cfg.Egress.Protocol
			}
		}
		egressMoved := c.cfg.Egress.Table != l.cfg.Egress.Table || c.cfg.Egress.Protocol != l.cfg.Egress.Protocol
		l.cfg = c.cfg
		if egressMoved {
			l.saveEgress()
		}
		for k := range l.overrides {
			if !l.hasUplink(k) {
				delete(l.overrides, k)
			}
		}
		// Probes the caller starts next must find their tables and rules
		// in place; the next pass applies them again (and retries).
		if l.deps.ProbeTables != nil {
			if _, err := l.deps.ProbeTables.Set(ctx, ProbeTablesFor(l.cfg)); err != nil {
				l.log.Warn("reload: probe tables", "error", err)
			}
		}
	}
	l.signal()
	return nil
}

func (l *Loop) hasUplink(name string) bool {
	for _, u := range l.cfg.Uplinks {
		if u.Name == name {
			return true
		}
	}
	return false
}

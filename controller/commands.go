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
	cmdResetUplink
	cmdDecommission
	cmdAlive // no-op round trip (Alive)
)

type command struct {
	kind     commandKind
	uplink   string
	override Override
	duration time.Duration // of the override; 0: until cleared
	cfg      *config.Config
	// who names the operator, for the logs and the history.
	who string
	// wasDrained receives Undrain's answer before reply is sent.
	wasDrained *bool
	// warnings receives what a reload applied only in part, before reply
	// is sent.
	warnings *[]string
	reply    chan error
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

// Reload applies a new, already validated configuration. An error means
// it was refused whole (ErrReloadRefused, or an overrides file that could
// not follow it) and the running configuration stays. Warnings name what
// was applied only in part: the new configuration runs, and the speaker's
// sessions or the egress table could not all follow it yet.
func (l *Loop) Reload(ctx context.Context, cfg *config.Config) ([]string, error) {
	var warnings []string
	err := l.send(ctx, command{kind: cmdReload, cfg: cfg, warnings: &warnings}, 0)
	return warnings, err
}

// ResetUplink closes the uplink's BGP sessions and lets them reconnect at
// once; it also lifts a max-prefix hold-down the speaker keeps. who names
// the operator (logs and history). The decision does not change: the
// announcements come back with the sessions.
func (l *Loop) ResetUplink(ctx context.Context, uplink, who string) error {
	return l.send(ctx, command{kind: cmdResetUplink, uplink: uplink, who: who}, 0)
}

// Decommission takes the site out of service on purpose: every uplink
// announces with GRACEFUL_SHUTDOWN for controller.drain_grace, then
// everything is withdrawn, the egress routes and the internal default
// removed. It returns once that has been applied (the daemon then exits),
// or with ctx's error. Calling it again while one runs waits for the same
// end. There is no undo short of a restart.
func (l *Loop) Decommission(ctx context.Context, who string) error {
	if err := l.send(ctx, command{kind: cmdDecommission, who: who}, 0); err != nil {
		return err
	}
	select {
	case <-l.decommissioned:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Decommissioned is closed once a decommission has been applied: nothing
// is announced or routed any more. The daemon stops when it closes,
// whoever asked (signal, API).
func (l *Loop) Decommissioned() <-chan struct{} { return l.decommissioned }

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
	case cmdResetUplink:
		if !l.hasUplink(c.uplink) {
			return fmt.Errorf("controller: %q: %w", c.uplink, ErrUnknownUplink)
		}
		reason := "reset by operator"
		if c.who != "" {
			reason += " " + c.who
		}
		if err := l.deps.Speaker.ResetUplink(ctx, c.uplink, reason); err != nil {
			return fmt.Errorf("controller: reset %s: %w", c.uplink, err)
		}
		state := StateUnknown
		if l.last != nil {
			if d, ok := l.last.Decision(c.uplink); ok {
				state = d.State
			}
		}
		l.history.add(Event{Time: now, Uplink: c.uplink, From: state, To: state, Reason: "BGP sessions " + reason, Actions: []string{"reset sessions"}})
		l.log.Info("BGP sessions reset", "uplink", c.uplink, "who", c.who)
	case cmdDecommission:
		if !l.decomSince.IsZero() {
			return nil // one is under way; the caller waits for its end
		}
		l.decomSince = now
		reason := fmt.Sprintf("decommission by %s: graceful shutdown on every uplink for %s, then withdrawn everywhere", c.who, l.cfg.Controller.DrainGrace)
		l.history.add(Event{Time: now, From: StateUnknown, To: StateDrained, Reason: reason, Actions: []string{"decommission"}})
		l.log.Warn("decommissioning the site", "who", c.who, "drain_grace", l.cfg.Controller.DrainGrace)
	case cmdReload:
		if _, err := CheckReload(l.cfg, c.cfg); err != nil {
			return err // refused whole
		}
		// Overrides of uplinks the new configuration lacks go, from the
		// file first: memory and file never disagree, so an uplink added
		// back later (or after a restart) does not find an old override.
		kept := overridesFor(c.cfg, l.overrides)
		if len(kept) != len(l.overrides) || c.cfg.Controller.StateDir != l.cfg.Controller.StateDir {
			if err := saveOverrides(c.cfg.Controller.StateDir, kept); err != nil {
				return fmt.Errorf("controller: reload refused, the overrides file cannot follow it: %w", err)
			}
			for k := range l.overrides {
				if _, ok := kept[k]; !ok {
					l.log.Info("override dropped: its uplink left the configuration", "uplink", k)
				}
			}
			l.overrides = kept
		}
		warn := func(msg string, err error) {
			l.log.Error("reload: "+msg, "error", err)
			if c.warnings != nil {
				*c.warnings = append(*c.warnings, msg+": "+err.Error())
			}
		}
		if err := l.deps.Speaker.Reconfigure(ctx, c.cfg); err != nil {
			warn("BGP sessions did not all follow the new configuration (the speaker keeps retrying; see mhctl status)", err)
		}
		if l.deps.Egress != nil &&
			(c.cfg.Egress.Table != l.cfg.Egress.Table || c.cfg.Egress.Protocol != l.cfg.Egress.Protocol) {
			// The next pass installs the routes in the new table (or with
			// the new protocol) before it removes the old ones.
			if err := l.deps.Egress.Retarget(c.cfg.Egress.Table, c.cfg.Egress.Protocol); err != nil {
				warn(fmt.Sprintf("egress.table/egress.protocol kept at %d/%d", l.cfg.Egress.Table, l.cfg.Egress.Protocol), err)
				c.cfg.Egress.Table, c.cfg.Egress.Protocol = l.cfg.Egress.Table, l.cfg.Egress.Protocol
			}
		}
		egressMoved := c.cfg.Egress.Table != l.cfg.Egress.Table || c.cfg.Egress.Protocol != l.cfg.Egress.Protocol
		if c.cfg.Controller.StateDir != l.cfg.Controller.StateDir {
			// The decision file must appear in the new directory with the
			// next settled pass, changed or not: a restart reads it there.
			l.savedDecision = nil
		}
		l.cfg = c.cfg
		if l.restored != nil {
			l.restored = restoredFor(l.cfg, l.restored)
		}
		if egressMoved {
			l.saveEgress()
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
	_, ok := uplinkConfig(l.cfg, name)
	return ok
}

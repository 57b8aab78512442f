package config

import "time"

// Defaults of the controller section.
const (
	DefaultStartupWait = 30 * time.Second
	// MaxStartupWait bounds controller.startup_wait: the BGP speaker holds
	// its sessions back for that long at most (End-of-RIB must not go out
	// before the first decision), and a site silent for longer than this
	// after a start is worse than one announced on incomplete verdicts.
	MaxStartupWait           = 5 * time.Minute
	DefaultControllerHold    = 10 * time.Second
	DefaultControllerHoldMax = 5 * time.Minute
	DefaultDrainGrace        = 60 * time.Second
	DefaultResync            = 30 * time.Second
	DefaultStateDir          = "/var/lib/multihomed"
	DefaultHistorySize       = 1000
	DefaultDegradedPrepend   = 3
)

// controller checks the decision loop's tuning.
func (c *checker) controller(r rawController) Controller {
	out := Controller{
		StartupWait: c.duration("controller.startup_wait", r.StartupWait, DefaultStartupWait),
		HoldDown:    c.duration("controller.hold_down", r.HoldDown, DefaultControllerHold),
		HoldDownMax: c.duration("controller.hold_down_max", r.HoldDownMax, DefaultControllerHoldMax),
		DrainGrace:  c.duration("controller.drain_grace", r.DrainGrace, DefaultDrainGrace),
		Resync:      c.duration("controller.resync", r.Resync, DefaultResync),
		StateDir:    r.StateDir,
		HistorySize: DefaultHistorySize,
		FailStatic:  true,
	}
	if out.StateDir == "" {
		out.StateDir = DefaultStateDir
	}
	if out.StartupWait > MaxStartupWait {
		c.add("controller.startup_wait", "%s is above the %s maximum; use for example 30s", out.StartupWait, MaxStartupWait)
	}
	if out.HoldDownMax < out.HoldDown {
		c.add("controller.hold_down_max", "%s is below hold_down %s; use at least hold_down", out.HoldDownMax, out.HoldDown)
	}
	if out.Resync < 100*time.Millisecond {
		c.add("controller.resync", "%s is too short; use 1s or more", out.Resync)
	}
	out.HistorySize = inRange(c, "controller.history_size", r.HistorySize, 1, 1_000_000, out.HistorySize)
	if r.FailStatic != nil {
		out.FailStatic = *r.FailStatic
	}
	return out
}

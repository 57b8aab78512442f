package main

import (
	"errors"
	"log/slog"
	"slices"
	"sync"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/internal/gcpace"
)

// gcPacing paces the garbage collector for full tables while the
// configuration takes one (an uplink with import: full), and gives it back
// its defaults when a reload takes the last one away.
type gcPacing struct {
	log *slog.Logger

	mu     sync.Mutex
	pacer  *gcpace.Pacer
	ownEnv bool // GOGC or GOMEMLIMIT set: said once, then left alone
}

// takesFullTables reports whether any uplink imports a full table.
func takesFullTables(cfg *config.Config) bool {
	return slices.ContainsFunc(cfg.Uplinks, func(u config.Uplink) bool { return u.BGP.Import == config.ImportFull })
}

// apply starts or stops the pacing for cfg.
func (g *gcPacing) apply(cfg *config.Config) {
	g.mu.Lock()
	defer g.mu.Unlock()
	full := takesFullTables(cfg)
	switch {
	case full && g.pacer == nil && !g.ownEnv:
		p, err := gcpace.Start(gcpace.FullTables)
		if errors.Is(err, gcpace.ErrOperatorSet) {
			g.ownEnv = true
			g.log.Info("import: full with GOGC or GOMEMLIMIT in the environment: the garbage collector runs as they say")
			return
		}
		if err != nil {
			g.log.Error("garbage collector pacing for full tables not started", "error", err)
			return
		}
		g.pacer = p
		g.log.Info("import: full: garbage collection paced for large tables (GOGC off, memory limit after each collection)",
			"ratio", gcpace.FullTables.Ratio, "headroom_mib", gcpace.FullTables.Headroom>>20)
	case !full && g.pacer != nil:
		g.pacer.Stop()
		g.pacer = nil
		g.log.Info("no uplink imports a full table: garbage collection back to Go's defaults")
	}
}

// stop gives the collector its defaults back.
func (g *gcPacing) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pacer != nil {
		g.pacer.Stop()
		g.pacer = nil
	}
}

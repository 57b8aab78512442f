package main

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/multihomed/multihomed/config"
)

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func withImport(modes ...config.ImportMode) *config.Config {
	cfg := &config.Config{}
	for _, m := range modes {
		cfg.Uplinks = append(cfg.Uplinks, config.Uplink{BGP: config.UplinkBGP{Import: m}})
	}
	return cfg
}

// TestGCPacingFollowsConfig: the pacing runs while an uplink imports a
// full table, and a reload without one gives Go's defaults back.
func TestGCPacingFollowsConfig(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := gcPercent()
	g := &gcPacing{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer g.stop()

	g.apply(withImport(config.ImportDefault, config.ImportDefault))
	if g.pacer != nil || gcPercent() != before {
		t.Fatalf("no full table: pacing started (GOGC %d)", gcPercent())
	}
	g.apply(withImport(config.ImportDefault, config.ImportFull))
	if g.pacer == nil || gcPercent() != -1 {
		t.Fatalf("an uplink with import: full: pacer %v, GOGC %d; want a pacer and GOGC off", g.pacer, gcPercent())
	}
	first := g.pacer
	g.apply(withImport(config.ImportFull, config.ImportFull))
	if g.pacer != first {
		t.Error("a reload that keeps full tables restarted the pacing")
	}
	g.apply(withImport(config.ImportDefault))
	if g.pacer != nil || gcPercent() != before {
		t.Errorf("reload without full tables: pacer %v, GOGC %d; want none and %d", g.pacer, gcPercent(), before)
	}
}

// TestGCPacingLeavesOperatorSettings: GOGC in the environment wins, on
// start and on every reload after it.
func TestGCPacingLeavesOperatorSettings(t *testing.T) {
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "")
	before := gcPercent()
	g := &gcPacing{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer g.stop()
	for range 2 {
		g.apply(withImport(config.ImportFull))
		if g.pacer != nil || !g.ownEnv || gcPercent() != before {
			t.Fatalf("GOGC set: pacer %v, ownEnv %v, GOGC %d; want the collector left at %d", g.pacer, g.ownEnv, gcPercent(), before)
		}
	}
}

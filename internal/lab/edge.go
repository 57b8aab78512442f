package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Edge is the routing software in the edge namespace that a comparison
// run (CompareRun) measures: multihomed, ExaBGP with its healthcheck, or a
// plain FRR edge. Only the edge differs between them; the lab, the ISPs,
// the faults and the flow are the same.
type Edge interface {
	// Name labels the edge in tables and plots, such as "exabgp-default".
	Name() string
	// Start starts the software; the lab must be up. It returns before the
	// sessions are established (wait with Lab.AwaitRouting).
	Start(ctx context.Context) error
	// Restart is a planned restart: a clean stop, then Start.
	Restart(ctx context.Context) error
	// Repair puts back what a healed fault left missing that the edge's
	// operator would have configured statically (the ExaBGP edge's kernel
	// defaults, which a link cut flushes). Idempotent.
	Repair(ctx context.Context) error
	// Log returns what the software logged, for errors.
	Log() string
	// Stop stops the software. Safe to call twice.
	Stop()
}

// MultihomedEdge runs multihomed with ScenarioConfig's profile (ProfileFast,
// ProfileFastDocumented or ProfileDefault), no hold-down back-off.
type MultihomedEdge struct {
	processEdge
	l       *Lab
	binary  string
	profile string
	echo    io.Writer
}

// NewMultihomedEdge prepares a multihomed edge for l; binary is the
// multihomed binary, echo (may be nil) receives its log as it runs.
func NewMultihomedEdge(l *Lab, binary, profile string, echo io.Writer) *MultihomedEdge {
	return &MultihomedEdge{l: l, binary: binary, profile: profile, echo: echo}
}

// Name implements Edge.
func (e *MultihomedEdge) Name() string { return "multihomed-" + e.profile }

// Start implements Edge: it writes the configuration (once) and starts the
// daemon.
func (e *MultihomedEdge) Start(ctx context.Context) error {
	if e.dir == "" {
		dir, err := os.MkdirTemp("", "mhlab-edge-")
		if err != nil {
			return err
		}
		e.dir = dir
		// Its own API socket, so that several labs can run at once.
		cfg := ScenarioConfigAt(e.profile, filepath.Join(dir, "state"), false, true, e.l.TargetDelay()) +
			fmt.Sprintf("api:\n  socket: %s\n", filepath.Join(dir, "api.sock"))
		if err := os.WriteFile(filepath.Join(dir, "multihomed.yaml"), []byte(cfg), 0o600); err != nil {
			return err
		}
	}
	d, err := StartDaemon(ctx, e.l.Edge, e.binary, filepath.Join(e.dir, "multihomed.yaml"), e.echo)
	if err != nil {
		return err
	}
	e.d = d
	return nil
}

// Restart implements Edge: SIGTERM (the daemon's own clean stop), then a
// new daemon with the same configuration and state directory.
func (e *MultihomedEdge) Restart(ctx context.Context) error {
	if e.d != nil {
		if err := e.d.Stop(15 * time.Second); err != nil {
			return fmt.Errorf("lab: multihomed restart: %w", err)
		}
	}
	return e.Start(ctx)
}

// Repair implements Edge: multihomed puts its routes back itself.
func (e *MultihomedEdge) Repair(context.Context) error { return nil }

// processEdge is what the edges that run one process in the edge namespace
// (multihomed, ExaBGP) share: the process and its scratch directory, made
// by Start.
type processEdge struct {
	dir string
	d   *Daemon
}

// Log implements Edge: the process's log so far, "" before Start.
func (e *processEdge) Log() string {
	if e.d == nil {
		return ""
	}
	return e.d.Log()
}

// Stop implements Edge: SIGTERM, SIGKILL after ten seconds, then the
// scratch directory is removed.
func (e *processEdge) Stop() {
	if e.d != nil {
		_ = e.d.Stop(10 * time.Second)
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
		e.dir = ""
	}
}

// Daemon returns the running daemon (nil before Start).
func (e *MultihomedEdge) Daemon() *Daemon { return e.d }

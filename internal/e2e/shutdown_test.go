package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// isGShut reports whether a path carries GRACEFUL_SHUTDOWN (RFC 8326): FRR
// prints it by name, BIRD as (65535,0).
func isGShut(p lab.Path) bool {
	return slices.Contains(p.Communities, "graceful-shutdown") || slices.Contains(p.Communities, "65535:0")
}

// egressRoutes lists the daemon's routes (protocol 78) in every table of
// the edge, both families; empty when there are none.
func egressRoutes(t *testing.T, e *env) string {
	t.Helper()
	var all []string
	for _, fam := range []string{"-4", "-6"} {
		out, err := e.lab.Edge.Run(context.Background(), "ip", fam, "route", "show", "table", "all", "proto", "78")
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(strings.Join(all, "\n"))
}

// TestShutdownWithdrawAPI: `mhctl shutdown --withdraw` (the API path;
// TestStopWithdraw covers SIGUSR2) makes both ISPs, FRR and BIRD, hold the
// site /48 with GRACEFUL_SHUTDOWN first, then withdraws it from both,
// removes the egress routes, mhctl exits 0 saying so and the daemon exits
// with status 0.
func TestShutdownWithdrawAPI(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(daemonDir(t), "api.sock")
	e := start(t, lab.Options{}, lab.EdgeConfig(nil)+fmt.Sprintf("controller:\n  drain_grace: 5s\napi:\n  socket: %s\n", sock))
	isps := []struct {
		r    lab.Router
		edge netip.Addr
	}{{e.lab.ISPARouter, lab.EdgeAAddr6}, {e.lab.ISPBRouter, lab.EdgeBAddr6}}
	holds := func(what string, want func(p lab.Path, ok bool) bool) {
		t.Helper()
		for _, isp := range isps {
			waitSitePath(t, isp.r, isp.edge, isp.r.Name()+": "+what, want)
		}
	}
	holds("holds the site /48 without GRACEFUL_SHUTDOWN", func(p lab.Path, ok bool) bool { return ok && !isGShut(p) })
	eventually(t, "egress routes installed", 30*time.Second, func() (bool, string) { r := egressRoutes(t, e); return r != "", r })

	var out, errb bytes.Buffer
	cmd := exec.Command(mhctlBinary, "--socket", sock, "shutdown", "--withdraw", "--reason", "e2e decommission", "--wait", "60s")
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := startAsync(t, cmd)

	holds("holds the site /48 with GRACEFUL_SHUTDOWN", func(p lab.Path, ok bool) bool { return ok && isGShut(p) })
	holds("no longer holds the site /48", func(_ lab.Path, ok bool) bool { return !ok })
	select {
	case err := <-done:
		if err != nil || !strings.Contains(out.String(), "withdrawn everywhere") {
			t.Fatalf("mhctl shutdown --withdraw: %v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("mhctl shutdown --withdraw did not return:\n%s%s", out.String(), errb.String())
	}
	select {
	case <-e.daemon.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not exit after the decommission")
	}
	if err := e.daemon.Stop(time.Second); err != nil {
		t.Fatalf("daemon exit after decommission: %v; want status 0", err)
	}
	if r := egressRoutes(t, e); r != "" {
		t.Fatalf("egress routes after decommission:\n%s", r)
	}
	if !strings.Contains(e.daemon.Log(), "audit") {
		t.Errorf("no audit line for the shutdown in the daemon's log:\n%s", tail(e.daemon.Log(), 20))
	}
}

package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// TestStopWithdraw: `multihomed stop --withdraw` (SIGUSR2 through the pid
// file) makes ISP-A's route carry GRACEFUL_SHUTDOWN, then withdraws it,
// removes the egress routes, and the daemon exits 0.
func TestStopWithdraw(t *testing.T) {
	t.Parallel()
	cfg := lab.EdgeConfig(nil) + "controller:\n  drain_grace: 5s\n"
	e := start(t, lab.Options{}, cfg)
	holds := ispAHolds(t, e)

	eventually(t, "egress routes installed", 30*time.Second, func() (bool, string) { r := egressRoutes(t, e); return r != "", r })

	var out bytes.Buffer
	stop := exec.Command(daemonBinary, "stop", "--withdraw", "--config", e.configPath)
	stop.Stdout, stop.Stderr = &out, &out
	stopped := startAsync(t, stop)

	holds("ISP-A holds the site /48 with GRACEFUL_SHUTDOWN", func(p lab.Path, ok bool) bool { return ok && isGShut(p) })
	holds("ISP-A no longer holds the site /48", func(_ lab.Path, ok bool) bool { return !ok })
	select {
	case err := <-stopped:
		if err != nil || !strings.Contains(out.String(), "exited") {
			t.Fatalf("multihomed stop --withdraw: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("multihomed stop --withdraw did not return:\n%s", out.String())
	}
	if err := e.daemon.Stop(time.Second); err != nil {
		t.Fatalf("daemon exit after decommission: %v; want status 0", err)
	}
	if r := egressRoutes(t, e); r != "" {
		t.Fatalf("egress routes after decommission:\n%s", r)
	}
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/testenv"
)

// Soak leak limits: what the daemon may hold at the end of a soak beyond
// what it held at the start, once the lab is steady again. A leak per
// fault (a goroutine or descriptor left behind by each session reset,
// reload or drain) exceeds them within the first minute's faults.
const (
	soakGoroutineSlack = 10
	soakFDSlack        = 5
)

// TestSoakShort: 60 s of random faults on ISP-A (cut, gray failure, loss,
// link flapping, reload, drain; lab.Soak), then repaired: the daemon stays
// up and ends with at most soakGoroutineSlack more goroutines and
// soakFDSlack more open descriptors than it started with. `mhlab soak`
// runs the long version (docs/benchmarks.md).
func TestSoakShort(t *testing.T) {
	if !testenv.InCI() && os.Getenv("MH_SOAK") == "" {
		t.Skip("the short soak takes over a minute: it runs in CI (CI=true) or with MH_SOAK=1")
	}
	t.Parallel()
	dir := daemonDir(t)
	sock := filepath.Join(dir, "api.sock")
	cfg := lab.ScenarioConfig(lab.ProfileFast, filepath.Join(dir, "state"), false, true) + fmt.Sprintf("api:\n  socket: %s\n", sock)
	e := start(t, lab.Options{}, cfg)
	if _, err := e.lab.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
		t.Fatalf("steady state: %v", err)
	}
	seed := uint64(time.Now().UnixNano())
	var log strings.Builder
	res, err := e.lab.Soak(ctx, lab.SoakOptions{Duration: 60 * time.Second, Seed: seed, Daemon: e.daemon, Socket: sock, Log: &log})
	if err != nil {
		t.Fatalf("soak (seed %d): %v\n%s", seed, err, log.String())
	}
	t.Logf("soak (seed %d): faults %v, %d samples (%d unreadable)\nstart %s\nend   %s\nmax   %s", seed, res.Faults, res.Samples, res.SampleErrors, res.Start, res.End, res.Max)
	if res.Samples < 30 {
		t.Errorf("only %d samples in 60 s; the sampler did not run", res.Samples)
	}
	if res.End.Passes <= res.Start.Passes {
		t.Errorf("controller passes did not advance: %d -> %d", res.Start.Passes, res.End.Passes)
	}
	if res.End.Goroutines > res.Start.Goroutines+soakGoroutineSlack {
		t.Errorf("goroutines %d at the end, %d at the start: more than %d left behind\n%s", res.End.Goroutines, res.Start.Goroutines, soakGoroutineSlack, log.String())
	}
	if res.End.FDs > res.Start.FDs+soakFDSlack {
		t.Errorf("open descriptors %d at the end, %d at the start: more than %d left behind\n%s", res.End.FDs, res.Start.FDs, soakFDSlack, log.String())
	}
}

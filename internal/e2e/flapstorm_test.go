package e2e

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// stormISPBUpdateBound is the most UPDATEs ISP-B may receive from the edge
// while ISP-A storms. What the edge announces to ISP-B depends on isp-b's
// own state (and on fail-static, which needs every uplink down); isp-a's
// flapping changes neither, so the expected count is 0. The bound allows
// one UPDATE per session (two) for a single legitimate change of isp-b, for
// example its probes judging it degraded for a moment on a loaded machine;
// an edge that passed isp-a's flapping on to ISP-B sends one or more per
// flap, tens in ten seconds.
const stormISPBUpdateBound = 2

// TestFlapStorm: ISP-A's sessions are reset 10 times a second for 10 s
// (`clear bgp` on its FRR), and separately its link goes down or up 10
// times a second for 10 s. The daemon stays up, isp-a's events show the
// hold-down growing (checkStormEvents), ISP-B receives at most
// stormISPBUpdateBound UPDATEs,
// and the daemon's RSS and goroutines return within 10 % of their start
// (measured on a build without the race detector, from a start sampled
// after a 5 s warm-up of the same storm, each sample after a garbage
// collection the daemon is asked for: lab.FlapStorm).
// `mhlab storm` runs the full minute (docs/benchmarks.md).
func TestFlapStorm(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{lab.StormSessions, lab.StormLink} {
		t.Run(strings.ReplaceAll(kind, " ", "_"), func(t *testing.T) {
			t.Parallel()
			dir := daemonDir(t)
			sock := filepath.Join(dir, "api.sock")
			cfg := lab.ScenarioConfig(lab.ProfileFast, filepath.Join(dir, "state"), false, false) + fmt.Sprintf("api:\n  socket: %s\n", sock) + lab.StormConfig
			// RSS is measured on the build operators run: the race
			// detector's shadow memory grows with every allocation and is
			// not given back, so a race build's RSS says nothing here.
			e := startBinary(t, lab.Options{ISPBFRR: true}, cfg, plainDaemon(t))
			res, err := e.lab.FlapStorm(ctx, e.daemon, sock, kind, 10, 10*time.Second, 5*time.Second, 120*time.Second, 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d in %s; ISP-B received %d UPDATEs; hold-downs named in events %v; fresh %s; start %s; end %s (back within 10%%: %v)\nisp-a events:\n%s",
				kind, res.Actions, res.Took.Round(time.Millisecond), res.ISPBUpdates, res.HoldDowns(), res.Fresh, res.Start, res.End, res.Returned, strings.Join(res.Events, "\n"))
			select {
			case <-e.daemon.Done():
				t.Fatal("the daemon exited")
			default:
			}
			if res.Actions < 50 {
				t.Errorf("only %d %s in 10 s: the storm did not happen", res.Actions, kind)
			}
			checkStormEvents(t, res.Events, time.Second, 10*time.Second)
			if res.ISPBUpdates > stormISPBUpdateBound {
				t.Errorf("ISP-B received %d UPDATEs during the storm; want at most %d", res.ISPBUpdates, stormISPBUpdateBound)
			}
			if !res.Returned {
				t.Errorf("RSS and goroutines not back within 10%% of the start 30 s after the storm: start %s, end %s", res.Start, res.End)
			}
		})
	}
}

// checkStormEvents checks isp-a's decision events ("from->to: reason")
// from a storm of dur under hold_down h (doubling): the uplink went down;
// every worsening after the first names its grown hold-down; and it came
// back at most floor(log2(dur/h+1))+1 times (n returns during the storm
// wait at least h*(2^n-1) in all; one more return after it).
func checkStormEvents(t *testing.T, events []string, h, dur time.Duration) {
	t.Helper()
	rank := map[string]int{"up": 0, "degraded": 1, "down": 2}
	worse, returns := 0, 0
	for _, e := range events {
		ft, reason, _ := strings.Cut(e, ": ")
		from, to, _ := strings.Cut(ft, "->")
		rf, okF := rank[from]
		rt, okT := rank[to]
		if !okF || !okT {
			continue
		}
		switch {
		case rt > rf:
			worse++
			if worse > 1 && !strings.Contains(reason, "flapping: hold-down ") {
				t.Errorf("worsening %d does not name its grown hold-down: %q", worse, e)
			}
		case rt < rf && to == "up":
			returns++
		}
	}
	if worse == 0 {
		t.Errorf("isp-a never went down or degraded: the storm did not reach the daemon; events:\n%s", strings.Join(events, "\n"))
	}
	if bound := int(math.Log2(float64(dur/h)+1)) + 1; returns > bound {
		t.Errorf("isp-a came back %d times; with a doubling hold-down from %s over %s at most %d; events:\n%s", returns, h, dur, bound, strings.Join(events, "\n"))
	}
}

var (
	plainOnce sync.Once
	plainPath string
	plainErr  error
)

// plainDaemon returns the daemon built without the race detector, next to
// the race build (so the daemon's user can reach it), building it once.
func plainDaemon(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() {
		plainPath = filepath.Join(filepath.Dir(daemonBinary), "multihomed-plain")
		out, err := exec.Command("go", "build", "-o", plainPath, "github.com/multihomed/multihomed/cmd/multihomed").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("build multihomed without -race: %v\n%s", err, out)
		}
	})
	if plainErr != nil {
		t.Fatal(plainErr)
	}
	return plainPath
}

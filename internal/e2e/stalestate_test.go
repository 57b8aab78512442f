package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// TestRestartNeverAnnouncesRemoved: the daemon runs with isp-a and isp-b
// and a third site prefix, and saves that decision. It is stopped (with
// graceful restart off, so the ISPs drop everything at once and start the
// new run empty) and started again with a configuration that removed isp-a
// and the third prefix. From before the new start until ISP-B holds the
// site's prefixes again and 3 s more, polled every 20 ms: ISP-A (FRR) never
// holds anything from the edge and neither ISP ever holds the removed
// prefix, although the saved decision names both.
func TestRestartNeverAnnouncesRemoved(t *testing.T) {
	t.Parallel()
	removed := netip.MustParsePrefix("2001:db8:fade::/48")
	both := lab.EdgeConfig(nil)
	apiBlock := fmt.Sprintf("api:\n  socket: %s\n", filepath.Join(daemonDir(t), "api.sock"))
	old := strings.Replace(both, "    - "+lab.SitePrefix4.String()+"\n", "    - "+lab.SitePrefix4.String()+"\n    - "+removed.String()+"\n", 1) +
		"bgp:\n  graceful_restart: false\n" + apiBlock
	if !strings.Contains(old, removed.String()) {
		t.Fatal("test broken: site prefixes not found in the lab config")
	}
	e := start(t, lab.Options{}, old)
	a, b := e.lab.ISPARouter, e.lab.ISPBRouter
	for _, w := range []struct {
		r    lab.Router
		from netip.Addr
	}{{a, lab.EdgeAAddr6}, {b, lab.EdgeBAddr6}} {
		eventually(t, w.r.Name()+" holds the third prefix from the old run", 60*time.Second, func() (bool, string) {
			_, ok, why, _ := pathFrom(w.r, removed, w.from)
			return ok, why
		})
	}
	saved := filepath.Join(e.stateDir, "decision.json")
	eventually(t, "the saved decision names isp-a and the third prefix", 30*time.Second, func() (bool, string) {
		data, err := os.ReadFile(saved)
		return err == nil && strings.Contains(string(data), `"isp-a"`) && strings.Contains(string(data), removed.String()), string(data)
	})
	if err := e.daemon.Stop(15 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, w := range []struct {
		r    lab.Router
		from netip.Addr
	}{{a, lab.EdgeAAddr6}, {b, lab.EdgeBAddr6}} {
		eventually(t, w.r.Name()+" dropped the old run's routes (no graceful restart)", 30*time.Second, func() (bool, string) {
			_, ok1, why1, err1 := pathFrom(w.r, removed, w.from)
			_, ok2, why2, err2 := pathFrom(w.r, lab.SitePrefix6, w.from)
			return err1 == nil && err2 == nil && !ok1 && !ok2, why1 + "; " + why2
		})
	}
	data, err := os.ReadFile(saved)
	if err != nil || !strings.Contains(string(data), removed.String()) || !strings.Contains(string(data), `"isp-a"`) {
		t.Fatalf("the saved decision no longer names isp-a and %s (%v): the test would prove nothing\n%s", removed, err, data)
	}

	// The new configuration: isp-b only, the two usual prefixes.
	cut := strings.Index(both, "  - name: isp-b\n")
	if cut < 0 {
		t.Fatal("test broken: isp-b not found in the lab config")
	}
	cutA := strings.Index(both, "  - name: isp-a\n")
	e.writeConfig(both[:cutA] + both[cut:] + apiBlock)
	watch := lab.WatchRIB(20*time.Millisecond,
		lab.RIBWatched{Router: a, Prefix: lab.SitePrefix6, From: lab.EdgeAAddr6, Never: true},
		lab.RIBWatched{Router: a, Prefix: removed, From: lab.EdgeAAddr6, Never: true},
		lab.RIBWatched{Router: b, Prefix: removed, From: lab.EdgeBAddr6, Never: true},
	)
	if e.daemon, err = e.startDaemon(); err != nil {
		watch.Stop()
		t.Fatal(err)
	}
	eventually(t, "ISP-B holds the site /48 from the new run", 60*time.Second, func() (bool, string) {
		_, ok, why, _ := pathFrom(b, lab.SitePrefix6, lab.EdgeBAddr6)
		return ok, why
	})
	time.Sleep(3 * time.Second) // the watch's window after the announcement, not a wait for a condition
	res := watch.Stop()
	t.Logf("ISP RIBs across the restart: %s", res)
	if len(res.Gaps) > 0 {
		t.Errorf("a removed uplink or prefix was announced: %d polls, first %s %s at %s", len(res.Gaps), res.Gaps[0].Router, res.Gaps[0].Prefix, res.Gaps[0].At.Format("15:04:05.000"))
	}
	if res.Polls-res.Errors < 100 {
		t.Errorf("only %d successful polls: the watch proves nothing", res.Polls-res.Errors)
	}
	if s, err := a.Session(ctx, lab.EdgeAAddr6); err != nil || s.Established {
		t.Errorf("ISP-A's session with the edge: %+v %v; want never established (isp-a removed)", s, err)
	}
	log := e.daemon.Log()
	if !strings.Contains(log, `msg="decision restored until the first health verdicts" uplink=isp-b prefixes=2`) || strings.Contains(log, "restored until the first health verdicts\" uplink=isp-a") {
		t.Errorf("want the saved decision restored for isp-b with its 2 prefixes only; log:\n%s", tail(log, 20))
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// probesOf reads the health figures of every uplink from `mhctl status -o
// json`: verdict, since and targets, by uplink name.
type probeView struct {
	Probed  bool
	Verdict string
	Since   string
	Targets []struct {
		Target string
		Probes string // protojson writes uint64 as a string
	}
}

// probes returns how many probes the uplink's first target has sent.
func (p probeView) probes() int {
	if len(p.Targets) == 0 {
		return -1
	}
	n, err := strconv.Atoi(p.Targets[0].Probes)
	if err != nil {
		return -1
	}
	return n
}

func probesOf(t *testing.T, socket string) (map[string]probeView, error) {
	var st struct {
		Uplinks []struct {
			Name   string
			Probes probeView
		}
	}
	if err := statusJSON(t, socket, &st); err != nil {
		return nil, err
	}
	m := map[string]probeView{}
	for _, u := range st.Uplinks {
		m[u.Name] = u.Probes
	}
	return m, nil
}

// TestReloadHealthProbes: SIGHUP applies health (and egress) changes
// without a restart.
// Adding a health block to ISP-B starts its probes while ISP-A's verdict
// carries over untouched (same since); changing ISP-A's block restarts
// only ISP-A's probes, and its controller state never leaves up meanwhile
// (the controller keeps its state until the new verdict); a reload that
// changes nothing leaves every probe alone.
func TestReloadHealthProbes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sock := ""
	blockA := lab.HealthBlock(lab.ProfileFast)
	cfg := func(a, b string) string {
		return lab.EdgeConfig(map[string]string{"isp-a": a, "isp-b": b}) + fmt.Sprintf("api:\n  socket: %s\n", sock)
	}
	sock = daemonDir(t) + "/api.sock"
	e := start(t, lab.Options{}, cfg(blockA, ""))
	// Both uplinks up in the controller (BGP established) first, so that
	// nothing but the reloads moves them.
	for _, u := range []string{"isp-a", "isp-b"} {
		eventually(t, u+" up", 90*time.Second, func() (bool, string) {
			st, n, _, err := uplinkState(t, sock, u)
			return err == nil && st == "up" && n > 0, fmt.Sprintf("%s %d %v", st, n, err)
		})
	}
	var before map[string]probeView
	eventually(t, "ISP-A probed and up", 90*time.Second, func() (bool, string) {
		var err error
		before, err = probesOf(t, sock)
		return err == nil && before["isp-a"].Verdict == "up" && !before["isp-b"].Probed, fmt.Sprintf("%+v %v", before, err)
	})
	reloads := func() int { return strings.Count(e.daemon.Log(), "health probes reconfigured") }
	reloadAndWait := func(text, what string) {
		t.Helper()
		n := strings.Count(e.daemon.Log(), "config reloaded")
		e.writeConfig(text)
		if err := e.daemon.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(t, what+": reloaded", 20*time.Second, func() (bool, string) {
			return strings.Count(e.daemon.Log(), "config reloaded") > n, tail(e.daemon.Log(), 5)
		})
	}

	// Add probes to ISP-B (one target).
	blockB := fmt.Sprintf("    health:\n      interval: 50ms\n      timeout: 75ms\n      min_up: 1\n      targets: [\"icmp://%s\"]\n", lab.InetAddr6)
	reloadAndWait(cfg(blockA, blockB), "ISP-B probes added")
	if !strings.Contains(e.daemon.Log(), "kept=isp-a") {
		t.Errorf("the reload did not keep ISP-A's probes:\n%s", tail(e.daemon.Log(), 10))
	}
	var after map[string]probeView
	eventually(t, "ISP-B probed and up, ISP-A untouched", 30*time.Second, func() (bool, string) {
		var err error
		after, err = probesOf(t, sock)
		return err == nil && after["isp-b"].Verdict == "up" && len(after["isp-b"].Targets) == 1, fmt.Sprintf("%+v %v", after, err)
	})
	if after["isp-a"].Since != before["isp-a"].Since || after["isp-a"].Verdict != "up" {
		t.Errorf("ISP-A's verdict did not carry over: before %+v, after %+v", before["isp-a"], after["isp-a"])
	}

	// Change ISP-A's block: its probes restart, ISP-B's carry over, and the
	// controller's state for ISP-A stays up throughout.
	out, _, code := mhctl(t, sock, "events", "-o", "json")
	if code != 0 {
		t.Fatalf("mhctl events: exit %d", code)
	}
	var ev struct{ Events []struct{ Seq string } }
	_ = json.Unmarshal([]byte(out), &ev)
	lastSeq := "0"
	if n := len(ev.Events); n > 0 {
		lastSeq = ev.Events[n-1].Seq
	}
	mid, err := probesOf(t, sock)
	if err != nil {
		t.Fatal(err)
	}
	slowA := strings.Replace(blockA, "interval: 50ms", "interval: 100ms", 1)
	reloadAndWait(cfg(slowA, blockB), "ISP-A probes changed")
	if !strings.Contains(e.daemon.Log(), "kept=isp-b") {
		t.Errorf("the reload did not keep ISP-B's probes:\n%s", tail(e.daemon.Log(), 10))
	}
	// Right after the reload: ISP-B's windows carried over (its probe
	// count went on), ISP-A's started again.
	if p, err := probesOf(t, sock); err != nil || p["isp-b"].probes() < mid["isp-b"].probes() || p["isp-a"].probes() >= mid["isp-a"].probes() {
		t.Errorf("probe counts across the change: before %+v, after %+v (%v); want ISP-B's going on, ISP-A's restarted", mid, p, err)
	}
	eventually(t, "ISP-A up again on its new probes", 30*time.Second, func() (bool, string) {
		p, err := probesOf(t, sock)
		return err == nil && p["isp-a"].Verdict == "up" && p["isp-a"].Since != before["isp-a"].Since, fmt.Sprintf("%+v %v", p, err)
	})
	out, _, _ = mhctl(t, sock, "events", "--after", lastSeq, "-o", "json")
	var since struct {
		Events []struct {
			Uplink, To string
			Actions    []string
		}
	}
	if err := json.Unmarshal([]byte(out), &since); err != nil {
		t.Fatalf("events json: %v\n%s", err, out)
	}
	for _, ev := range since.Events {
		if ev.Uplink == "isp-a" && (ev.To != "up" || slices.Contains(ev.Actions, "withdraw")) {
			t.Errorf("the controller moved ISP-A across the probe change: %+v\n%s", ev, out)
		}
	}

	// A reload that changes nothing touches no probe.
	n := reloads()
	reloadAndWait(cfg(slowA, blockB), "no change")
	if reloads() != n {
		t.Errorf("an unchanged health configuration reconfigured the probes:\n%s", tail(e.daemon.Log(), 10))
	}

	// egress.table moves the site's defaults to table 100 without a
	// restart; the main table keeps none of ours.
	defaults := func(table string) string {
		out, err := e.lab.Edge.Run(ctx, "ip", "-6", "route", "show", "table", table, "default", "proto", "78")
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(string(out))
	}
	// Adding ISP-B's probes may have taken it down in the controller (its
	// first probes can fail), and the controller's hold-down keeps it down
	// a while after its verdict is up again: wait for both, as at the start.
	for _, u := range []string{"isp-a", "isp-b"} {
		eventually(t, u+" up again", 30*time.Second, func() (bool, string) {
			st, n, _, err := uplinkState(t, sock, u)
			return err == nil && st == "up" && n > 0, fmt.Sprintf("%s %d %v", st, n, err)
		})
	}
	if got := defaults("main"); strings.Count(got, "default") != 2 {
		t.Fatalf("before the move, main holds:\n%s", got)
	}
	reloadAndWait(cfg(slowA, blockB)+"egress:\n  table: 100\n", "egress table moved")
	eventually(t, "our defaults in table 100 only", 20*time.Second, func() (bool, string) {
		in100, inMain := defaults("100"), defaults("main")
		return strings.Count(in100, "default") == 2 && inMain == "", "table 100:\n" + in100 + "\nmain:\n" + inMain
	})
	if strings.Contains(e.daemon.Log(), "egress.protocol change on restart only") {
		t.Errorf("the reload warned that egress needs a restart:\n%s", tail(e.daemon.Log(), 10))
	}
	// No rule looks up table 100 in the edge: the daemon says so.
	if !strings.Contains(e.daemon.Log(), "egress.table 100: no ip rule looks it up for IPv6 and IPv4") {
		t.Errorf("no warning about the unused egress table:\n%s", tail(e.daemon.Log(), 10))
	}
}

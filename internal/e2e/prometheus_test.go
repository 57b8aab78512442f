package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/testenv"
)

// forInLab is what every `for:` of the shipped rules is shortened to in
// the lab: long enough that the alert is seen pending first, short enough
// for a test.
const forInLab = 3 * time.Second

// startPrometheus runs Debian's Prometheus in the edge namespace of e's
// lab, scraping the daemon every second and evaluating a copy of
// docs/prometheus/rules.yml every second with each `for:` cut to forInLab.
// It stops when the test ends; on failure its log is printed.
func startPrometheus(t *testing.T, e *env) *lab.Prometheus {
	t.Helper()
	testenv.Need(t, "prometheus")
	shipped, err := os.ReadFile(filepath.Join("..", "..", "docs", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	rules, shortened, err := lab.ShortenFor(shipped, forInLab)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(shortened, "MultihomedUplinkDown") {
		t.Fatalf("test broken: MultihomedUplinkDown's for: is not above %s any more (shortened: %v); adjust forInLab", forInLab, shortened)
	}
	p, err := lab.StartPrometheus(context.Background(), e.lab.Edge, lab.PrometheusOptions{Dir: t.TempDir(), Rules: [][]byte{rules}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prometheus log (tail):\n%s", tail(p.Log(), 30))
		}
		p.Close()
	})
	if err := p.WaitReady(context.Background(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// query runs expr and returns the value of each series, keyed by the
// value of label (the series' labels in full when label is "").
func query(p *lab.Prometheus, expr, label string) (map[string]float64, error) {
	samples, err := p.Query(context.Background(), expr)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range samples {
		k := s.Labels[label]
		if label == "" {
			k = s.String()
		}
		out[k] = s.Value
	}
	return out, nil
}

// findAlert returns the named alert for an uplink (State "" when it is
// not active).
func findAlert(p *lab.Prometheus, name, uplink string) (lab.Alert, error) {
	alerts, err := p.Alerts(context.Background())
	if err != nil {
		return lab.Alert{}, err
	}
	for _, a := range alerts {
		if a.Labels["alertname"] == name && a.Labels["uplink"] == uplink {
			return a, nil
		}
	}
	return lab.Alert{}, nil
}

// TestPrometheusSeesFailover: a real Prometheus in the edge namespace
// scrapes the daemon each second and evaluates the shipped rules (with
// `for:` shortened). Before the fault every rule evaluates without error
// and the uplink-down alert is inactive; after ISP-A's link is cut the
// alert for isp-a goes pending then firing, and the series show the
// failover: isp-a's state from up to down, its egress and announcements
// gone, isp-b still carrying egress. Then every panel query of the Grafana
// dashboard returns data from that Prometheus (dashboardQueries).
func TestPrometheusSeesFailover(t *testing.T) {
	t.Parallel()
	// The daemon runs unprivileged: its state and socket directories are
	// its own (daemonDir).
	sock := filepath.Join(daemonDir(t), "api.sock")
	cfg := lab.ScenarioConfig(lab.ProfileFast, daemonDir(t), false, false) + fmt.Sprintf("api:\n  socket: %s\n", sock)
	e := start(t, lab.Options{}, cfg)
	l := e.lab
	p := startPrometheus(t, e)
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
		t.Fatalf("steady state (site via both ISPs, egress via ISP-A): %v", err)
	}

	eventually(t, "prometheus scrapes the edge (up == 1)", 60*time.Second, func() (bool, string) {
		v, err := query(p, `up{job="multihomed"}`, "instance")
		return err == nil && v[lab.EdgeMetricsAddr] == 1, fmt.Sprintf("%v %v", v, err)
	})
	eventually(t, "prometheus sees both uplinks up, egress via isp-a", 60*time.Second, func() (bool, string) {
		up, err := query(p, `multihomed_uplink_state{state="up"}`, "uplink")
		if err != nil {
			return false, err.Error()
		}
		eg, err := query(p, `multihomed_uplink_egress`, "uplink")
		if err != nil {
			return false, err.Error()
		}
		return up["isp-a"] == 1 && up["isp-b"] == 1 && eg["isp-a"] == 1, fmt.Sprintf("up %v egress %v", up, eg)
	})
	// Every shipped rule evaluates against the real daemon's series: a
	// rule whose expression breaks on them (label clash, type error) shows
	// health "err" here while promtool's synthetic tests pass.
	eventually(t, "every rule evaluated without error", 30*time.Second, func() (bool, string) {
		rules, err := p.Rules(ctx)
		if err != nil {
			return false, err.Error()
		}
		var bad []string
		for _, r := range rules {
			if r.Health != "ok" {
				bad = append(bad, fmt.Sprintf("%s/%s: %s %s", r.Group, r.Name, r.Health, r.LastError))
			}
		}
		return len(rules) > 0 && len(bad) == 0, fmt.Sprintf("%d rules, not ok: %v", len(rules), bad)
	})
	if a, err := findAlert(p, "MultihomedUplinkDown", "isp-a"); err != nil || a.State != "" {
		t.Fatalf("MultihomedUplinkDown for isp-a is %q (%v) before any fault; want inactive", a.State, err)
	}

	cut := time.Now()
	if err := l.CutISPA(ctx); err != nil {
		t.Fatal(err)
	}
	// Pending first (the expression holds, for: not yet passed), then
	// firing: the shortened for: is at work, not an always-true rule. The
	// polling starts at once after the cut, so the pending seconds are not
	// missed.
	var states []string
	var firing lab.Alert
	eventually(t, "MultihomedUplinkDown firing for isp-a", 60*time.Second, func() (bool, string) {
		a, err := findAlert(p, "MultihomedUplinkDown", "isp-a")
		if err != nil {
			return false, err.Error()
		}
		if len(states) == 0 || states[len(states)-1] != a.State {
			states = append(states, a.State)
		}
		firing = a
		return a.State == "firing", fmt.Sprintf("states seen: %q", states)
	})
	t.Logf("MultihomedUplinkDown for isp-a: states %q, firing %s after the cut", states, time.Since(cut).Round(time.Millisecond))
	if firing.ActiveAt.Before(cut.Add(-time.Second)) {
		t.Errorf("MultihomedUplinkDown for isp-a active since %s, before the cut at %s", firing.ActiveAt, cut)
	}
	if !slices.Contains(states, "pending") {
		// A one-second evaluation interval against a 3 s for: leaves
		// about two evaluations pending; a poll every 50 ms sees them.
		t.Errorf("MultihomedUplinkDown never seen pending before firing (states %q): is for: applied?", states)
	}
	if st, err := findAlert(p, "MultihomedUplinkDown", "isp-b"); err != nil || st.State != "" {
		t.Errorf("MultihomedUplinkDown for isp-b is %q (%v); isp-b is up", st.State, err)
	}
	if _, err := l.AwaitRouting(ctx, lab.TransitOnlyB, "eth-b", 90*time.Second); err != nil {
		t.Fatalf("failover (site only via ISP-B, egress via ISP-B): %v", err)
	}

	// The failover in the series: each query holds now only if the state
	// moved, and the _over_time halves hold only if the earlier state was
	// recorded too.
	for _, c := range []struct{ what, expr string }{
		{"isp-a was up before the cut", `max_over_time(multihomed_uplink_state{uplink="isp-a",state="up"}[10m]) == 1`},
		{"isp-a is down now", `multihomed_uplink_state{uplink="isp-a",state="down"} == 1`},
		{"isp-a carried egress before the cut", `max_over_time(multihomed_uplink_egress{uplink="isp-a"}[10m]) == 1`},
		{"isp-a carries no egress now", `multihomed_uplink_egress{uplink="isp-a"} == 0`},
		{"isp-b carries egress now", `multihomed_uplink_egress{uplink="isp-b"} == 1`},
		{"the site is no longer announced to isp-a", `multihomed_announced_prefixes{uplink="isp-a"} == 0`},
		{"the state change to down was counted", `increase(multihomed_uplink_state_changes_total{uplink="isp-a",to="down"}[10m]) > 0`},
		{"the recording rule counts one announced uplink", `instance:multihomed_uplinks_announced:count == 1`},
	} {
		eventually(t, c.what, 30*time.Second, func() (bool, string) {
			v, err := query(p, c.expr, "")
			return err == nil && len(v) == 1, fmt.Sprintf("%s: %v %v", c.expr, v, err)
		})
	}

	// An operator override, so the dashboard's override query has a series
	// to show (isp-a is down anyway, nothing moves).
	if out, stderr, code := mhctl(t, sock, "drain", "isp-a", "--reason", "e2e: dashboard override panel"); code != 0 {
		t.Fatalf("mhctl drain: exit %d: %s %s", code, out, stderr)
	}
	eventually(t, "prometheus sees the drain of isp-a", 30*time.Second, func() (bool, string) {
		v, err := query(p, `multihomed_override_active{uplink="isp-a",kind="drain"}`, "uplink")
		return err == nil && v["isp-a"] == 1, fmt.Sprintf("%v %v", v, err)
	})
	checkDashboard(t, p)
}

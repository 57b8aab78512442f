package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/multihomed/multihomed/controller"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var seriesName = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*multihomed_[a-zA-Z0-9_:]*|multihomed_[a-zA-Z0-9_:]*`)

// exportedNames returns every metric family the daemon exports (with the
// series names of histograms) and every recorded name of the Prometheus
// rules.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	m := NewMetrics(newFakeController())
	// Counters and the failover gauge have series once something happened.
	m.ObserveProbe("isp-a", "icmp://2001:db8:9000::10", 10*time.Millisecond, nil)
	m.onEvent(controller.Event{Seq: 1, Time: time.Now(), Uplink: "isp-a", From: controller.StateUp, To: controller.StateDown})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetMetric()[0].Histogram != nil {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+s] = true
			}
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "docs", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names
}

// TestDashboardQueries reads docs/grafana/multihomed.json: every panel
// query must name only series the daemon exports or the rules record, and
// must parse as PromQL (promtool, with Grafana's variables replaced).
// Running the queries against a live Prometheus is not done here.
func TestDashboardQueries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "grafana", "multihomed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("docs/grafana/multihomed.json: %v", err)
	}
	names := exportedNames(t)
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
			used := seriesName.FindAllString(tg.Expr, -1)
			if len(used) == 0 {
				t.Errorf("panel %q: %q reads no multihomed series", p.Title, tg.Expr)
			}
			for _, n := range used {
				if !names[n] {
					t.Errorf("panel %q: %s is neither exported by the daemon nor recorded by docs/prometheus/rules.yml", p.Title, n)
				}
			}
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok {
			for _, n := range seriesName.FindAllString(q, -1) {
				if !names[n] {
					t.Errorf("variable %s: %s is not exported", v.Name, n)
				}
			}
		}
	}
	checkPromQL(t, exprs)
}

// checkPromQL has promtool parse each query, as the expression of a
// recording rule.
func checkPromQL(t *testing.T, exprs []string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing (Debian package prometheus); CI must check the dashboard's PromQL")
		}
		t.Skip("promtool not installed (Debian package prometheus): the dashboard's PromQL syntax is not checked")
	}
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")
	var sb strings.Builder
	sb.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(grafana.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&sb, "      - record: dashboard_query_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("promtool rejects a dashboard query:\n%s\n%s", out, sb.String())
	} else if err != nil {
		t.Fatal(err)
	}
}

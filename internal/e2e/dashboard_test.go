package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// dashboardSkips names the panel queries of docs/grafana/multihomed.json
// that the namespace lab cannot feed, each with the reason. A query listed
// here is still run (it must not error); only an empty result is allowed.
// Every entry must match a query of the dashboard, so the list cannot go
// stale. It is empty today: every panel has data in the failover test.
var dashboardSkips = map[string]string{}

// grafanaPanel is the part of a Grafana panel the test reads; a row nests
// its panels.
type grafanaPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
		Hide bool   `json:"hide"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// panelQuery is one query of one panel.
type panelQuery struct{ panel, expr string }

func (d grafanaDashboard) queries() []panelQuery {
	var out []panelQuery
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" && !tg.Hide {
					out = append(out, panelQuery{p.Title, tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// grafanaVariables resolves the dashboard's query variables the way
// Grafana does for "All" on a multi-value variable used with =~: the
// values label_values() finds in Prometheus, regex-quoted, as (a|b). The
// built-in interval variables get what Grafana would use for a 15-minute
// view of a 1 s scrape: $__rate_interval is at least four scrapes; one
// minute covers the whole test.
func grafanaVariables(t *testing.T, p *lab.Prometheus, d grafanaDashboard) *strings.Replacer {
	t.Helper()
	pairs := []string{"$__rate_interval", "1m", "$__interval", "15s", "$__range", "15m"}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Fatalf("dashboard variable %s: query %q is not label_values(series, label); teach the test to resolve it", v.Name, q)
		}
		samples, err := p.Query(context.Background(), m[1])
		if err != nil {
			t.Fatalf("dashboard variable %s: %v", v.Name, err)
		}
		var vals []string
		for _, s := range samples {
			// Regex-quoted, then each backslash doubled: the value sits
			// in a PromQL string literal, as Grafana writes it.
			x := strings.ReplaceAll(regexp.QuoteMeta(s.Labels[m[2]]), `\`, `\\`)
			if x != "" && !slices.Contains(vals, x) {
				vals = append(vals, x)
			}
		}
		if len(vals) == 0 {
			t.Fatalf("dashboard variable %s: %s has no values in the lab's Prometheus", v.Name, q)
		}
		val := "(" + strings.Join(vals, "|") + ")"
		pairs = append(pairs, "${"+v.Name+"}", val, "$"+v.Name, val)
	}
	return strings.NewReplacer(pairs...)
}

// checkDashboard runs every panel query of docs/grafana/multihomed.json
// against p, with the template variables substituted, and fails on a query
// error or an empty result (unless dashboardSkips names the query).
func checkDashboard(t *testing.T, p *lab.Prometheus) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "grafana", "multihomed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("docs/grafana/multihomed.json: %v", err)
	}
	qs := d.queries()
	if len(qs) == 0 {
		t.Fatal("docs/grafana/multihomed.json: no panel queries found")
	}
	vars := grafanaVariables(t, p, d)
	deadline := time.Now().Add(30 * time.Second)
	for _, q := range qs {
		expr := vars.Replace(q.expr)
		if strings.Contains(expr, "$") {
			t.Errorf("panel %q: %q still has a variable after substitution; teach the test its value", q.panel, expr)
			continue
		}
		// Rates need two samples in their window and recording rules an
		// evaluation: an empty result is retried after each new scrape
		// until one budget, shared by all queries, runs out.
		for {
			samples, err := p.Query(context.Background(), expr)
			if err != nil {
				t.Errorf("panel %q: %v", q.panel, err)
				break
			}
			if len(samples) > 0 {
				break
			}
			if reason, skip := dashboardSkips[q.expr]; skip {
				t.Logf("panel %q: %q empty, allowed: %s", q.panel, expr, reason)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("panel %q: %q: empty result", q.panel, expr)
				break
			}
			waitScrape(t, p)
		}
	}
	for expr := range dashboardSkips {
		if !slices.ContainsFunc(qs, func(q panelQuery) bool { return q.expr == expr }) {
			t.Errorf("dashboardSkips names %q, which no panel queries any more", expr)
		}
	}
	t.Logf("ran %d dashboard queries against the lab's Prometheus", len(qs))
}

// waitScrape waits until Prometheus has scraped the edge again (the
// sample time of up moves), so a retried query sees new data.
func waitScrape(t *testing.T, p *lab.Prometheus) {
	t.Helper()
	first := ""
	eventually(t, "prometheus scraped the edge again", 30*time.Second, func() (bool, string) {
		s, err := p.Query(context.Background(), `timestamp(up{job="multihomed"})`)
		if err != nil || len(s) != 1 {
			return false, fmt.Sprintf("%v %v", s, err)
		}
		now := fmt.Sprint(s[0].Value)
		if first == "" {
			first = now
		}
		return now != first, now
	})
}

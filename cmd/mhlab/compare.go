package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// compareOpts are the flags of `mhlab bench --edge`.
type compareOpts struct {
	daemon    string
	edges     []string // multihomed, exabgp, frr
	profiles  []string // multihomed probe profiles
	exabgp    []string // ExaBGP healthcheck variants
	scenarios []string // scenario names; empty: all
	reps      int
	imgDir    string // plots go here when not empty
	jsonPath  string // every result, for re-plotting, when not empty
	verbose   bool
	// targetDelay puts the internet host (the edges' probe target) that
	// much further away (lab.DelayTargets); 0: no delay line.
	targetDelay time.Duration
}

// edgeMaker builds one edge for a lab.
type edgeMaker struct {
	name string
	make func(l *lab.Lab) lab.Edge
}

func (o compareOpts) edgeMakers() ([]edgeMaker, error) {
	var out []edgeMaker
	var echo io.Writer
	if o.verbose {
		echo = os.Stdout
	}
	for _, e := range o.edges {
		switch e {
		case "multihomed":
			for _, p := range o.profiles {
				out = append(out, edgeMaker{"multihomed-" + p, func(l *lab.Lab) lab.Edge { return lab.NewMultihomedEdge(l, o.daemon, p, echo) }})
			}
		case "exabgp":
			for _, v := range o.exabgp {
				if v != lab.ExaBGPDefault && v != lab.ExaBGPTuned {
					return nil, fmt.Errorf("--exabgp: %q is not a variant; use %s or %s", v, lab.ExaBGPDefault, lab.ExaBGPTuned)
				}
				out = append(out, edgeMaker{"exabgp-" + v, func(l *lab.Lab) lab.Edge { return lab.NewExaBGPEdge(l, v) }})
			}
		case "frr":
			out = append(out, edgeMaker{"frr", func(l *lab.Lab) lab.Edge { return lab.NewFRREdge(l) }})
		default:
			return nil, fmt.Errorf("--edge: %q is not an edge; use multihomed, exabgp or frr (comma-separated)", e)
		}
	}
	return out, nil
}

// compare runs every scenario reps times against each edge, each edge in
// a lab of its own, and returns every result in run order.
func compare(ctx context.Context, o compareOpts) ([]lab.CompareResult, error) {
	makers, err := o.edgeMakers()
	if err != nil {
		return nil, err
	}
	var all []lab.CompareResult
	for _, m := range makers {
		res, err := compareEdge(ctx, o, m)
		all = append(all, res...)
		if err != nil {
			return all, fmt.Errorf("edge %s: %w", m.name, err)
		}
	}
	return all, nil
}

func compareEdge(ctx context.Context, o compareOpts, m edgeMaker) ([]lab.CompareResult, error) {
	step("Edge %s: building the lab (FRR ISP-A and transit, BIRD ISP-B)%s", m.name, farTargets(o.targetDelay))
	l, err := lab.Up(ctx, lab.Options{ID: netns.UniqueID()})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if o.targetDelay > 0 {
		if err := l.DelayTargets(ctx, o.targetDelay); err != nil {
			return nil, err
		}
	}
	// Start the edge on a converged lab: probes it sends before the ISPs
	// reach the internet host are lost, and multihomed keeps such losses
	// in its loss window (with 1 s probes, ISP-A was degraded for the
	// first run's fault).
	if _, err := l.AwaitISPs(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	e := m.make(l)
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	defer e.Stop()
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 120*time.Second); err != nil {
		return nil, fmt.Errorf("steady state: %w; edge log tail:\n%s", err, tail(e.Log(), 30))
	}
	flow, err := lab.StartFlow(l.Inet, "inet", lab.InetAddr6, l.LAN, "lan", lab.LANAddr6, 2*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer flow.Stop()
	var out []lab.CompareResult
	for _, sc := range l.CompareScenarios(e) {
		if len(o.scenarios) > 0 && !slices.Contains(o.scenarios, sc.Name) {
			continue
		}
		for i := 0; i < o.reps; i++ {
			// Let probe windows and the flow settle so that every run
			// starts from the same state.
			time.Sleep(2 * time.Second)
			r, err := l.CompareRun(ctx, flow, e, sc, 120*time.Second)
			if err != nil {
				return out, fmt.Errorf("%w; edge log tail:\n%s", err, tail(e.Log(), 30))
			}
			fmt.Printf("   %-18s %-16s run %d: inbound %-22s outbound %-22s (held %s%s)\n", m.name, sc.Name, i+1,
				window(r.Dirs[0]), window(r.Dirs[1]), r.Held.Round(10*time.Millisecond), pathWait(r, o.verbose))
			out = append(out, r)
		}
	}
	return out, nil
}

// pathWait says, for a run's line, how long the run waited for the flow
// to take ISP-A before the fault when that was more than one check; with
// verbose also what the ISPs forwarded at the first check and, when that
// was not ISP-A alone, where the lab routed the flow then.
func pathWait(r lab.CompareResult, verbose bool) string {
	s := ""
	if r.Path.Took >= 2*lab.FlowPathWindow {
		s = fmt.Sprintf("; waited %s for the flow to take ISP-A", r.Path.Took.Round(10*time.Millisecond))
	}
	if verbose {
		s += "; first check: " + r.Path.First.String()
		if r.Path.FirstState != "" {
			s += "; " + r.Path.FirstState
		}
	}
	return s
}

// window prints a direction's loss window, or that the edge never moved
// it while the fault lasted.
func window(d lab.CompareDir) string {
	if d.Unresolved {
		return fmt.Sprintf("never (%s held)", d.LossWindow.Round(100*time.Millisecond))
	}
	return fmt.Sprintf("%s (%.1f%% lost)", d.LossWindow.Round(time.Millisecond), lostPct(d))
}

func lostPct(d lab.CompareDir) float64 {
	if d.Sent == 0 {
		return 0
	}
	return 100 * float64(d.Lost) / float64(d.Sent)
}

// summary prints median and worst per edge and scenario.
func summary(w io.Writer, results []lab.CompareResult) error {
	type key struct{ edge, scenario string }
	var order []key
	by := map[key][]lab.CompareResult{}
	for _, r := range results {
		k := key{r.Edge, r.Scenario}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], r)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "edge\tscenario\truns\tinbound median\tinbound worst\toutbound median\toutbound worst\tlost in/out (median)")
	for _, k := range order {
		rs := by[k]
		cells := []string{k.edge, k.scenario, fmt.Sprint(len(rs))}
		var lost []string
		for dir := range 2 {
			med, worst := medianWorst(rs, dir)
			cells = append(cells, med, worst)
			var p []float64
			for _, r := range rs {
				p = append(p, lostPct(r.Dirs[dir]))
			}
			slices.Sort(p)
			lost = append(lost, fmt.Sprintf("%.1f%%", p[len(p)/2]))
		}
		cells = append(cells, strings.Join(lost, " / "))
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// medianWorst of one direction's loss windows; a run that never moved
// counts as worse than any that did, and is printed as "never".
func medianWorst(rs []lab.CompareResult, dir int) (string, string) {
	type v struct {
		never bool
		d     time.Duration
	}
	var vs []v
	for _, r := range rs {
		vs = append(vs, v{r.Dirs[dir].Unresolved, r.Dirs[dir].LossWindow.Round(time.Millisecond)})
	}
	slices.SortFunc(vs, func(a, b v) int {
		if a.never != b.never {
			if a.never {
				return 1
			}
			return -1
		}
		return int(a.d - b.d)
	})
	show := func(x v) string {
		if x.never {
			return "never"
		}
		return x.d.String()
	}
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		a, b := vs[len(vs)/2-1], vs[len(vs)/2]
		if a.never || b.never {
			med = b
		} else {
			med = v{d: (a.d + b.d) / 2}
		}
	}
	return show(med), show(vs[len(vs)-1])
}

// writeJSON keeps every result, timelines included.
func writeJSON(path string, results []lab.CompareResult) error {
	data, err := json.Marshal(results)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func readJSON(path string) ([]lab.CompareResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rs []lab.CompareResult
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// restartRow is one lab's runs of one scenario.
type restartRow struct {
	lab, scenario string
	in, out       []time.Duration
	ribGaps       []int // polls without the site /48 at the ISPs, per restart
}

// benchRestart measures the loss windows of a planned restart (SIGTERM)
// and a crash (SIGKILL), each followed by an immediate start, beside a
// link cut in the same lab and run, reps times each, in the FRR lab and in
// the BIRD-inbound lab (fast probe profile, a 1 kHz flow both ways). For
// restarts it also counts the 20 ms polls in which ISP-A or ISP-B lacked
// the site /48.
func benchRestart(ctx context.Context, daemonPath string, reps int, verbose bool) error {
	var rows []*restartRow
	for _, birdInbound := range []bool{false, true} {
		name := "FRR"
		if birdInbound {
			name = "BIRD inbound"
		}
		step("%s lab: building it", name)
		r, err := benchRestartLab(ctx, daemonPath, name, lab.Options{ID: netns.UniqueID(), BIRDInbound: birdInbound}, reps, verbose)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	step("Loss windows of a 1 kHz flow (internet host <-> LAN host), %d runs each", reps)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "lab\tscenario\tinbound median\tinbound worst\toutbound median\toutbound worst\tISP RIB polls without the /48")
	for _, r := range rows {
		gaps := "-"
		if r.ribGaps != nil {
			gaps = fmt.Sprint(r.ribGaps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.lab, r.scenario, median(r.in), slices.Max(r.in), median(r.out), slices.Max(r.out), gaps)
	}
	return tw.Flush()
}

func benchRestartLab(ctx context.Context, daemonPath, name string, opts lab.Options, reps int, verbose bool) ([]*restartRow, error) {
	l, err := lab.Up(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "mhlab-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "multihomed.yaml")
	if err := os.WriteFile(cfgPath, []byte(lab.ScenarioConfig(lab.ProfileFast, filepath.Join(dir, "state"), false, true)), 0o600); err != nil {
		return nil, err
	}
	var echo io.Writer
	if verbose {
		echo = os.Stdout
	}
	start := func() (*lab.Daemon, error) { return lab.StartDaemon(ctx, l.Edge, daemonPath, cfgPath, echo) }
	d, err := start()
	if err != nil {
		return nil, err
	}
	defer func() { _ = d.Stop(10 * time.Second) }()
	if err := l.AwaitSteady(ctx, 120*time.Second); err != nil {
		return nil, fmt.Errorf("steady state: %w; daemon log:\n%s", err, d.Log())
	}
	flow, err := lab.StartFlow(l.Inet, "inet", lab.InetAddr6, l.LAN, "lan", lab.LANAddr6, time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer flow.Stop()
	rows := []*restartRow{{lab: name, scenario: lab.RestartPlanned}, {lab: name, scenario: lab.RestartCrash}, {lab: name, scenario: "link cut"}}
	for i := 0; i < reps; i++ {
		for _, row := range rows[:2] {
			nd, m, err := l.MeasureRestart(ctx, flow, d, row.scenario, start, 2*time.Second, 120*time.Second)
			d = nd
			if err != nil {
				return nil, fmt.Errorf("%s: %w; daemon log tail:\n%s", row.scenario, err, tail(d.Log(), 20))
			}
			fmt.Printf("   %-12s %-15s run %d: inbound %6s outbound %6s (sessions back in %s; ISP RIBs: %s)\n", name, row.scenario, i+1,
				m.Inbound.LossWindow, m.Outbound.LossWindow, m.Back.Round(time.Millisecond), m.RIB)
			row.in, row.out = append(row.in, m.Inbound.LossWindow), append(row.out, m.Outbound.LossWindow)
			row.ribGaps = append(row.ribGaps, len(m.RIB.Gaps))
		}
		// The same run's link cut, from the same steady state.
		if err := l.AwaitSteady(ctx, 120*time.Second); err != nil {
			return nil, err
		}
		sc := l.Scenarios()[0]
		m, err := l.Measure(ctx, flow, sc, time.Second, 120*time.Second)
		if err != nil {
			return nil, fmt.Errorf("%w; daemon log tail:\n%s", err, tail(d.Log(), 20))
		}
		fmt.Printf("   %-12s %-15s run %d: inbound %6s outbound %6s (moved in %s, back in %s)\n", name, sc.Name, i+1,
			m.Inbound.LossWindow, m.Outbound.LossWindow, m.Converged.Round(time.Millisecond), m.Recovered.Round(time.Millisecond))
		rows[2].in, rows[2].out = append(rows[2].in, m.Inbound.LossWindow), append(rows[2].out, m.Outbound.LossWindow)
	}
	return rows, nil
}

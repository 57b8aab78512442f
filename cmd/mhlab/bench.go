package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// bench measures failover loss windows: for each probe profile, one lab,
// a 1 kHz flow between the internet host and the LAN host, and reps runs of
// each scenario (link cut, gray failure), printing median and worst of the
// inbound and outbound loss windows.
func bench(ctx context.Context, daemonPath string, profiles []string, reps int, verbose, birdInbound bool, targetDelay time.Duration) error {
	type key struct{ profile, scenario string }
	results := map[key][]lab.Measurement{}
	var order []key
	for _, profile := range profiles {
		routers := "FRR ISP-A and transit, BIRD ISP-B"
		if birdInbound {
			routers = "BIRD ISP-A, transit and ISP-B"
		}
		step("Profile %s: building the lab (%s)%s", profile, routers, farTargets(targetDelay))
		l, err := lab.Up(ctx, lab.Options{ID: netns.UniqueID(), BIRDInbound: birdInbound})
		if err != nil {
			return err
		}
		err = func() error {
			defer l.Close()
			if targetDelay > 0 {
				if err := l.DelayTargets(ctx, targetDelay); err != nil {
					return err
				}
			}
			dir, err := os.MkdirTemp("", "mhlab-bench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfgText := lab.ScenarioConfigAt(profile, filepath.Join(dir, "state"), false, true, targetDelay)
			d, err := startSteady(ctx, l, daemonPath, dir, cfgText, verbose)
			if err != nil {
				return err
			}
			defer d.Stop(10 * time.Second)
			flow, err := lab.StartFlow(l.Inet, "inet", lab.InetAddr6, l.LAN, "lan", lab.LANAddr6, time.Millisecond)
			if err != nil {
				return err
			}
			defer flow.Stop()
			for _, sc := range l.Scenarios()[:2] { // link cut, gray failure
				k := key{profile, sc.Name}
				order = append(order, k)
				for i := 0; i < reps; i++ {
					// Let the recovered uplink's probe windows refill so
					// every run starts from the same state.
					time.Sleep(2 * time.Second)
					m, err := l.Measure(ctx, flow, sc, time.Second, 120*time.Second)
					if err != nil {
						return fmt.Errorf("%w; daemon log tail:\n%s", err, tail(d.Log(), 20))
					}
					fmt.Printf("   %-8s %-13s run %d: inbound %6s outbound %6s (moved in %s, back in %s)\n", profile, sc.Name, i+1,
						m.Inbound.LossWindow, m.Outbound.LossWindow, m.Converged.Round(time.Millisecond), m.Recovered.Round(time.Millisecond))
					results[k] = append(results[k], m)
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	step("Loss windows of a 1 kHz flow (internet host <-> LAN host), %d runs each", reps)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "profile\tscenario\tinbound median\tinbound worst\toutbound median\toutbound worst")
	for _, k := range order {
		var in, out []time.Duration
		for _, m := range results[k] {
			in = append(in, m.Inbound.LossWindow)
			out = append(out, m.Outbound.LossWindow)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.profile, k.scenario, median(in), slices.Max(in), median(out), slices.Max(out))
	}
	return tw.Flush()
}

// farTargets says how far away --target-delay puts the probe target, for
// a step line.
func farTargets(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf(", internet host (probe target) %v further away", d)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// soak runs the lab (fast probe profile) with random faults on ISP-A for
// duration and prints the daemon's resources at the start, at the end and
// their maximum (lab.Soak).
func soak(ctx context.Context, daemonPath string, duration time.Duration, seed uint64, verbose bool) error {
	step("Building the lab (FRR ISP-A and transit, BIRD ISP-B)")
	l, err := lab.Up(ctx, lab.Options{ID: netns.UniqueID()})
	if err != nil {
		return err
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "mhlab-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "api.sock")
	cfgText := lab.ScenarioConfig(lab.ProfileFast, filepath.Join(dir, "state"), false, true) + fmt.Sprintf("api:\n  socket: %s\n", sock)
	d, err := startSteady(ctx, l, daemonPath, dir, cfgText, verbose)
	if err != nil {
		return err
	}
	defer d.Stop(10 * time.Second)
	step("Soaking for %s (seed %d): faults on ISP-A, one sample a second", duration, seed)
	t0 := time.Now()
	res, err := l.Soak(ctx, lab.SoakOptions{Duration: duration, Seed: seed, Daemon: d, Socket: sock, Log: os.Stdout})
	if err != nil {
		return fmt.Errorf("%w; daemon log tail:\n%s", err, tail(d.Log(), 30))
	}
	step("Soak of %s done in %s: %d samples (%d unreadable), faults %v", duration, time.Since(t0).Round(time.Second), res.Samples, res.SampleErrors, res.Faults)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tRSS (MiB)\tgoroutines\topen FDs\tcontroller passes")
	for _, r := range []struct {
		name string
		s    lab.ProcSample
	}{{"start", res.Start}, {"end", res.End}, {"max", res.Max}} {
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%d\t%d\n", r.name, float64(r.s.RSS)/(1<<20), r.s.Goroutines, r.s.FDs, r.s.Passes)
	}
	return tw.Flush()
}

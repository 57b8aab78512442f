package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// CPU bench shape (issue #15 item 6).
const (
	cpuUplinks  = 4
	cpuTargets  = 3
	cpuInterval = 50 * time.Millisecond // 20 Hz
)

// benchCPU measures multihomed's CPU while it probes 4 uplinks x 3 ICMPv6
// targets at 20 Hz in a namespace lab (veth, targets in namespaces behind
// a router), against baselines running at the same time, each in a lab of
// its own so that all of them see the same machine load: the same
// configuration probing at 1 Hz, and without health blocks (no probes,
// the idle daemon). With bursts, a fourth daemon probes at 20 Hz with
// suspicion bursts off (`no_bursts: true`), so that bursts on and off are
// compared with everything else equal. loss (percent) makes every lab's
// routers drop that share of what they forward, so that probes get lost
// and bursts run. Each reading is utime+stime from /proc/<pid>/stat over
// window, after a warm-up in which every probed uplink must have been
// judged up; the packets each edge sent on its uplinks over the window
// count the probes really sent (bursts included).
func benchCPU(ctx context.Context, daemon string, window time.Duration, bursts bool, loss int, verbose bool) error {
	type run struct {
		name     string
		interval time.Duration // 0: no probes
		noBursts bool
		cl       *lab.CPULab
		d        *lab.Daemon
	}
	runs := []*run{{name: "20 Hz", interval: cpuInterval}}
	if bursts {
		runs[0].name = "20 Hz, bursts"
		runs = append(runs, &run{name: "20 Hz, no bursts", interval: cpuInterval, noBursts: true})
	}
	runs = append(runs, &run{name: "1 Hz", interval: time.Second}, &run{name: "no probes"})
	idle := runs[len(runs)-1]
	dir, err := os.MkdirTemp("", "mhlab-cpu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	step("Building %d labs: an edge with %d uplinks, each a router with a target host (%d addresses) behind it", len(runs), cpuUplinks, cpuTargets)
	var ds []*lab.Daemon
	for i, r := range runs {
		if r.cl, err = lab.UpCPULab(ctx, netns.UniqueID(), cpuUplinks, cpuTargets); err != nil {
			return err
		}
		defer r.cl.Close()
		sub := filepath.Join(dir, fmt.Sprint(i))
		cfg := r.cl.Config(r.interval > 0, r.interval, r.noBursts, sub)
		path := filepath.Join(dir, fmt.Sprintf("%d.yaml", i))
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		var echo io.Writer
		if verbose {
			echo = os.Stdout
		}
		if r.d, err = lab.StartDaemon(ctx, r.cl.Edge, daemon, path, echo); err != nil {
			return err
		}
		defer r.d.Stop(10 * time.Second)
		ds = append(ds, r.d)
	}
	warm := 10 * time.Second
	step("Warming up %s, then measuring %s (utime+stime from /proc/<pid>/stat)", warm, window)
	if err := sleepOrDone(ctx, warm, ds); err != nil {
		return err
	}
	for _, r := range runs {
		for i := range cpuUplinks {
			if r.interval > 0 && !regexp.MustCompile(fmt.Sprintf(`uplink=up%d .*verdict=up`, i+1)).MatchString(r.d.Log()) {
				return fmt.Errorf("the %s daemon never judged up%d up: its probes do not work, so its CPU would not be the cost of probing; log:\n%s", r.name, i+1, tail(r.d.Log(), 30))
			}
		}
	}
	if loss > 0 {
		step("Dropping %d %% of what every router forwards (nftables), in every lab", loss)
		for _, r := range runs {
			if err := r.cl.Loss(ctx, loss); err != nil {
				return err
			}
		}
	}
	before := make([]time.Duration, len(runs))
	txBefore := make([]uint64, len(runs))
	for i, r := range runs {
		if before[i], err = lab.ProcessCPU(r.d.Pid()); err != nil {
			return err
		}
		if txBefore[i], err = r.cl.TxPackets(ctx); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if err := sleepOrDone(ctx, window, ds); err != nil {
		return err
	}
	wall := time.Since(t0)
	pct := make([]float64, len(runs))
	for i, r := range runs {
		after, err := lab.ProcessCPU(r.d.Pid())
		if err != nil {
			return err
		}
		tx, err := r.cl.TxPackets(ctx)
		if err != nil {
			return err
		}
		used := after - before[i]
		pct[i] = 100 * used.Seconds() / wall.Seconds()
		fmt.Printf("   %-16s daemon: %6.2f %% of one core (%s CPU in %s), %6.1f packets/s sent on its uplinks\n",
			r.name, pct[i], used, wall.Round(time.Millisecond), float64(tx-txBefore[i])/wall.Seconds())
	}
	idlePct := pct[len(pct)-1]
	probes := float64(cpuUplinks*cpuTargets) * float64(time.Second/cpuInterval)
	for i, r := range runs {
		if r.interval != cpuInterval {
			continue
		}
		extra := pct[i] - idlePct
		ratio := "idle used no measurable CPU"
		if idlePct > 0 {
			ratio = fmt.Sprintf("%.1f x the idle daemon", pct[i]/idlePct)
		}
		fmt.Printf("   %s minus %s: %.2f %% of one core (%s); %.0f steady probes/s, about %.0f us of CPU per steady probe\n",
			r.name, idle.name, extra, ratio, probes, extra/100*1e6/probes)
	}
	if bursts && pct[1] > 0 {
		fmt.Printf("   bursts / no bursts: %.2f\n", pct[0]/pct[1])
	}
	if onehz := pct[len(pct)-2]; onehz > 0 {
		fmt.Printf("   20 Hz / 1 Hz: %.1f\n", pct[0]/onehz)
	} else {
		fmt.Println("   20 Hz / 1 Hz: 1 Hz used no measurable CPU")
	}
	fmt.Printf("   resolution: 1/%d s per reading, %.2f %% of one core over this window\n", lab.ClockTick, 100/float64(lab.ClockTick)/wall.Seconds())
	return nil
}

// sleepOrDone waits d unless ctx ends or a daemon exits.
func sleepOrDone(ctx context.Context, d time.Duration, ds []*lab.Daemon) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, dm := range ds {
			select {
			case <-dm.Done():
				return fmt.Errorf("a daemon exited during the measurement; its log:\n%s", tail(dm.Log(), 30))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Until(deadline), 500*time.Millisecond)):
		}
	}
	return nil
}

package lab

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"syscall"
	"time"

	"github.com/multihomed/multihomed/api/client"
	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// SoakOptions shape a soak run (Lab.Soak).
type SoakOptions struct {
	// Duration is how long faults are injected.
	Duration time.Duration
	// Seed makes the fault sequence repeatable.
	Seed uint64
	// Daemon is the running daemon to sample and signal; Socket its API
	// socket (for drains).
	Daemon *Daemon
	Socket string
	// Every is the sampling period (1 s when zero).
	Every time.Duration
	// Log receives one line per fault and per sample (nil: none); writes
	// to it are serialized.
	Log io.Writer
}

// SoakResult is what a soak run measured. Start is sampled once the lab
// is steady before the first fault, End once it is steady again after
// the last fault was repaired; Max is the maximum of each figure over
// every sample.
type SoakResult struct {
	Start, End, Max ProcSample
	Samples         int
	// SampleErrors counts samples that could not be read (a scrape that
	// timed out on a loaded machine).
	SampleErrors int
	// Faults counts the faults injected, by name.
	Faults map[string]int
}

// soakFault is one kind of fault: apply it, and undo it (nil for faults
// that undo themselves).
type soakFault struct {
	name       string
	apply, fix func(context.Context) error
}

// Soak injects random faults on ISP-A (cut, gray failure, 30 % loss, link
// flapping, a configuration reload, a drain) for o.Duration while sampling
// the daemon's RSS, open descriptors, goroutines and controller passes
// every o.Every. The lab must be steady (site via both ISPs, egress via
// ISP-A) when it is called; it repairs everything and waits for that
// state again before the end sample. It fails if the daemon exits.
func (l *Lab) Soak(ctx context.Context, o SoakOptions) (SoakResult, error) {
	if o.Every == 0 {
		o.Every = time.Second
	}
	var logMu sync.Mutex // the sampler and the fault loop both log
	logf := func(format string, args ...any) {
		if o.Log != nil {
			logMu.Lock()
			fmt.Fprintf(o.Log, format+"\n", args...)
			logMu.Unlock()
		}
	}
	res := SoakResult{Faults: map[string]int{}}
	start, err := SampleDaemon(l.Edge, o.Daemon.Pid(), MetricsAddr)
	if err != nil {
		return res, fmt.Errorf("lab: soak start sample: %w", err)
	}
	res.Start, res.Max = start, start
	logf("start: %s", start)

	cc, err := client.Dial(client.Options{Socket: o.Socket})
	if err != nil {
		return res, err
	}
	defer cc.Close()
	api := apiv1.NewMultihomedClient(cc)
	faults := []soakFault{
		{"cut", l.CutISPA, l.RestoreISPA},
		{"gray", l.GrayFailISPA, l.HealISPA},
		{"loss", func(ctx context.Context) error { return l.DegradeISPA(ctx, 30) }, l.HealISPA},
		{"flap", func(ctx context.Context) error {
			return l.FlapISPA(ctx, l.CutISPA, l.RestoreISPA, 3, 500*time.Millisecond)
		}, nil},
		{"reload", func(context.Context) error { return o.Daemon.Signal(syscall.SIGHUP) }, nil},
		{"drain", func(ctx context.Context) error {
			_, err := api.Drain(ctx, &apiv1.DrainRequest{Uplink: "isp-a", Reason: "mhlab soak"})
			return err
		}, func(ctx context.Context) error {
			_, err := api.Undrain(ctx, &apiv1.UndrainRequest{Uplink: "isp-a"})
			return err
		}},
	}

	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var mu sync.Mutex // guards res while the sampler runs
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(o.Every)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			s, err := SampleDaemon(l.Edge, o.Daemon.Pid(), MetricsAddr)
			mu.Lock()
			if err != nil {
				res.SampleErrors++
				mu.Unlock()
				logf("sample: %v", err)
				continue
			}
			res.Samples++
			res.Max = maxSample(res.Max, s)
			mu.Unlock()
			logf("%s %s", s.At.Format("15:04:05"), s)
		}
	}()

	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed))
	var faultErr error
	for runCtx.Err() == nil && faultErr == nil {
		f := faults[rng.IntN(len(faults))]
		res.Faults[f.name]++
		logf("fault: %s", f.name)
		// Faults run to completion on ctx, not runCtx: a fault cut short
		// by the end of the run would leave ISP-A half broken.
		if faultErr = f.apply(ctx); faultErr != nil {
			faultErr = fmt.Errorf("lab: soak fault %s: %w", f.name, faultErr)
			break
		}
		if f.fix != nil {
			_ = sleepCtx(ctx, time.Duration(1000+rng.IntN(3000))*time.Millisecond)
			if faultErr = f.fix(ctx); faultErr != nil {
				faultErr = fmt.Errorf("lab: soak repair of %s: %w", f.name, faultErr)
			}
		}
		select {
		case <-o.Daemon.Done():
			faultErr = fmt.Errorf("lab: the daemon exited during the soak: %v", o.Daemon.err)
		case <-runCtx.Done():
		case <-time.After(time.Duration(1000+rng.IntN(2000)) * time.Millisecond):
		}
	}
	cancel()
	<-sampled
	if faultErr != nil {
		return res, faultErr
	}
	if _, err := l.AwaitRouting(ctx, TransitBoth, "eth-a", 120*time.Second); err != nil {
		return res, fmt.Errorf("lab: after the soak: %w", err)
	}
	// Let the last pass's short-lived work (probe windows refilling, the
	// API connection closing) finish before the end sample.
	cc.Close()
	if err := sleepCtx(ctx, 3*time.Second); err != nil {
		return res, err
	}
	if res.End, err = SampleDaemon(l.Edge, o.Daemon.Pid(), MetricsAddr); err != nil {
		return res, fmt.Errorf("lab: soak end sample: %w", err)
	}
	res.Max = maxSample(res.Max, res.End)
	logf("end: %s", res.End)
	return res, nil
}

func maxSample(a, b ProcSample) ProcSample {
	return ProcSample{At: b.At, RSS: max(a.RSS, b.RSS), FDs: max(a.FDs, b.FDs), Goroutines: max(a.Goroutines, b.Goroutines), Passes: max(a.Passes, b.Passes)}
}

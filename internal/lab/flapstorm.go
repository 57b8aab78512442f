package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/multihomed/multihomed/api/client"
	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/internal/netns"
)

// Kinds of flap storm (Lab.FlapStorm).
const (
	// StormSessions resets ISP-A's BGP sessions with the edge (`clear bgp`
	// on ISP-A's FRR, both families) at the storm's rate.
	StormSessions = "session resets"
	// StormLink takes the edge's link to ISP-A down and up, one change at
	// each tick of the storm's rate.
	StormLink = "link flaps"
)

// UpdatesReceived returns how many UPDATE messages FRR has received from
// neighbor (its message counters).
func (f *FRR) UpdatesReceived(ctx context.Context, neighbor string) (uint64, error) {
	var v map[string]struct {
		Stats struct {
			UpdatesRecv uint64 `json:"updatesRecv"`
		} `json:"messageStats"`
	}
	if err := f.JSON(ctx, "show bgp neighbors "+neighbor+" json", &v); err != nil {
		return 0, err
	}
	n, ok := v[neighbor]
	if !ok {
		return 0, fmt.Errorf("lab: %s has no neighbor %s", f.ns.Name, neighbor)
	}
	return n.Stats.UpdatesRecv, nil
}

// StormResult is what a flap storm measured.
type StormResult struct {
	Kind string
	// Actions counts the resets or link changes made, over Took.
	Actions int
	Took    time.Duration
	// Fresh is sampled before any storm (and warm-up); Start before the
	// storm, after the warm-up (the highest of startSamples, see
	// steadySample); End once the lab is steady again after it and the
	// daemon's RSS and goroutines are back within 10 % of Start (or when
	// ReturnWait ran out); Returned says which.
	Fresh, Start, End ProcSample
	Returned          bool
	// ISPBUpdates counts the UPDATEs ISP-B received from the edge (both
	// sessions) from the storm's start until the lab was steady again.
	ISPBUpdates uint64
	// Events are the daemon's decision events for isp-a during the storm
	// and its recovery, as "from->to: reason".
	Events []string
}

// startSamples is how many samples, a second apart, steadySample takes.
const startSamples = 5

// steadySample samples the daemon startSamples times a second apart and
// returns the sample with the highest RSS, its goroutines the highest
// seen. A Go daemon's RSS swings with its heap between collections (here
// by 5 MB on 50): one sample taken in a trough made the 10 % bound
// a coin toss, while a leak grows past the top of the swing.
func steadySample(ctx context.Context, ns *netns.NS, pid int) (ProcSample, error) {
	var top ProcSample
	for i := range startSamples {
		if i > 0 {
			if err := sleepCtx(ctx, time.Second); err != nil {
				return top, err
			}
		}
		s, err := sampleCollected(ns, pid)
		if err != nil {
			return top, err
		}
		g := max(top.Goroutines, s.Goroutines)
		if s.RSS > top.RSS {
			top = s
		}
		top.Goroutines = g
	}
	return top, nil
}

// sampleCollected samples the daemon right after a garbage collection it
// was asked for (CollectGarbage), so that the RSS compared before and after
// a storm is what the daemon keeps: without it an idle daemon's RSS stays
// at the heap goal its last busy moment set. A daemon that serves no
// profiling endpoint (a config without StormConfig) is sampled as it is.
func sampleCollected(ns *netns.NS, pid int) (ProcSample, error) {
	_ = CollectGarbage(ns, PprofAddr)
	return SampleDaemon(ns, pid, MetricsAddr)
}

// FlapStorm resets ISP-A's sessions or flaps its link (kind) rate times a
// second for dur while the daemon d runs with its API at socket, then
// waits for the lab to be steady again (AwaitSteady, up to recover) and for
// the daemon's RSS and goroutine count to return within 10 % of their
// start (up to returnWait). With warmup above zero the same storm runs
// for warmup first and the start is sampled after the lab is steady again,
// so that what a daemon allocates once (its heap reaching working size,
// first reconnections) is not counted as the storm's. ISP-B must run FRR (Options.ISPBFRR), whose
// message counters count the UPDATEs it received.
func (l *Lab) FlapStorm(ctx context.Context, d *Daemon, socket, kind string, rate int, dur, warmup, recover, returnWait time.Duration) (StormResult, error) {
	res := StormResult{Kind: kind}
	a, okA := l.ISPARouter.(*FRR)
	b, okB := l.ISPBRouter.(*FRR)
	if !okA || !okB {
		return res, fmt.Errorf("lab: a flap storm needs FRR as ISP-A and ISP-B (Options.ISPBFRR)")
	}
	if err := l.AwaitSteady(ctx, recover); err != nil {
		return res, fmt.Errorf("before the storm: %w", err)
	}
	var err error
	if res.Fresh, err = SampleDaemon(l.Edge, d.Pid(), MetricsAddr); err != nil {
		return res, err
	}
	res.Start = res.Fresh
	if warmup > 0 {
		if _, _, err := l.storm(ctx, d, a, kind, rate, warmup); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
		if err := l.AwaitSteady(ctx, recover); err != nil {
			return res, fmt.Errorf("after the warm-up: %w", err)
		}
		if res.Start, err = steadySample(ctx, l.Edge, d.Pid()); err != nil {
			return res, err
		}
	}
	updates := func() (uint64, error) {
		var n uint64
		for _, nb := range []string{EdgeBAddr6.String(), EdgeBAddr4.String()} {
			u, err := b.UpdatesReceived(ctx, nb)
			if err != nil {
				return 0, err
			}
			n += u
		}
		return n, nil
	}
	u0, err := updates()
	if err != nil {
		return res, err
	}
	cc, err := client.Dial(client.Options{Socket: socket})
	if err != nil {
		return res, err
	}
	defer cc.Close()
	api := apiv1.NewMultihomedClient(cc)
	evs, err := api.ListEvents(ctx, &apiv1.ListEventsRequest{Limit: 1000})
	if err != nil {
		return res, err
	}
	after := evs.GetNextAfter()

	n, took, err := l.storm(ctx, d, a, kind, rate, dur)
	res.Actions, res.Took = n, took
	if err != nil {
		return res, err
	}
	if err := l.AwaitSteady(ctx, recover); err != nil {
		return res, fmt.Errorf("after the storm: %w", err)
	}
	u1, err := updates()
	if err != nil {
		return res, err
	}
	res.ISPBUpdates = u1 - u0
	for {
		page, err := api.ListEvents(ctx, &apiv1.ListEventsRequest{After: after, Limit: 1000})
		if err != nil {
			return res, err
		}
		for _, e := range page.GetEvents() {
			if e.GetUplink() == "isp-a" {
				res.Events = append(res.Events, e.GetFrom()+"->"+e.GetTo()+": "+e.GetReason())
			}
		}
		after = page.GetNextAfter()
		if !page.GetMore() {
			break
		}
	}
	cc.Close()
	within := func(now, start int64) bool { return float64(now) <= 1.1*float64(start) }
	deadline := time.Now().Add(returnWait)
	for {
		if res.End, err = sampleCollected(l.Edge, d.Pid()); err != nil {
			return res, err
		}
		if within(res.End.RSS, res.Start.RSS) && within(int64(res.End.Goroutines), int64(res.Start.Goroutines)) {
			res.Returned = true
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, nil
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return res, err
		}
	}
}

// HoldDowns returns the hold-downs the events of a storm name
// ("hold-down 4s before it may return"), in order.
func (r StormResult) HoldDowns() []string {
	var out []string
	for _, e := range r.Events {
		if _, rest, ok := strings.Cut(e, "flapping: hold-down "); ok {
			out = append(out, strings.Fields(rest)[0])
		}
	}
	return out
}

// storm applies kind to ISP-A rate times a second for dur and leaves the
// link up; it returns how many actions it made and how long it took.
func (l *Lab) storm(ctx context.Context, d *Daemon, a *FRR, kind string, rate int, dur time.Duration) (int, time.Duration, error) {
	n := 0
	act := func(i int) error {
		switch kind {
		case StormSessions:
			_, err := a.Vtysh(ctx, "clear bgp "+EdgeAAddr6.String(), "clear bgp "+EdgeAAddr4.String())
			return err
		case StormLink:
			if i%2 == 0 {
				return l.CutISPA(ctx)
			}
			return l.RestoreISPA(ctx)
		}
		return fmt.Errorf("lab: storm kind %q: want %q or %q", kind, StormSessions, StormLink)
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	t0 := time.Now()
	for time.Since(t0) < dur {
		if err := act(n); err != nil {
			tick.Stop()
			_ = l.RestoreISPA(ctx)
			return n, time.Since(t0), err
		}
		n++
		select {
		case <-ctx.Done():
			tick.Stop()
			_ = l.RestoreISPA(ctx)
			return n, time.Since(t0), ctx.Err()
		case <-d.Done():
			tick.Stop()
			_ = l.RestoreISPA(ctx)
			return n, time.Since(t0), fmt.Errorf("lab: the daemon exited during the storm: %v", d.err)
		case <-tick.C:
		}
	}
	tick.Stop()
	took := time.Since(t0)
	return n, took, l.RestoreISPA(ctx)
}

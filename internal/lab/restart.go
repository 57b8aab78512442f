package lab

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// How a daemon is restarted (Lab.MeasureRestart).
const (
	// RestartPlanned stops the daemon with SIGTERM, as `systemctl restart`
	// or a package upgrade does, and starts it again at once.
	RestartPlanned = "planned restart"
	// RestartCrash kills it with SIGKILL and starts it again at once.
	RestartCrash = "crash"
)

// RestartMeasurement is the outcome of one restart with a flow running.
type RestartMeasurement struct {
	Kind string
	// Down is from the signal to the old process's exit; Back from the
	// signal until both ISPs' sessions with the edge are established
	// again (new sessions).
	Down, Back time.Duration
	// Inbound and Outbound are the flow's loss over the whole restart and
	// the settle time after it.
	Inbound, Outbound FlowReport
	// RIB is what polling ISP-A's and ISP-B's RIB for the site /48 from
	// the edge saw from before the signal until the end.
	RIB RIBWatchResult
}

// AwaitSteady waits until the lab is steady for a restart: the transit
// holds the site /48 via both ISPs, the edge's egress leaves via ISP-A,
// the daemon decides both uplinks up (its metrics at MetricsAddr) and both
// ISPs hold the /48 from the edge. The transit alone is not enough: it
// can still hold a path the daemon has just withdrawn.
func (l *Lab) AwaitSteady(ctx context.Context, timeout time.Duration) error {
	t0 := time.Now()
	if _, err := l.AwaitRouting(ctx, TransitBoth, "eth-a", timeout); err != nil {
		return err
	}
	last := ""
	for time.Since(t0) < timeout {
		ok, why := l.steady(ctx)
		if ok {
			return nil
		}
		last = why
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("lab: not steady within %s: %s", timeout, last)
}

func (l *Lab) steady(ctx context.Context) (bool, string) {
	m, err := ScrapeMetrics(l.Edge, MetricsAddr)
	if err != nil {
		return false, err.Error()
	}
	for _, u := range []string{"isp-a", "isp-b"} {
		if m["multihomed_uplink_state{state=up,uplink="+u+"}"] != 1 {
			return false, u + " not up in the daemon's decision"
		}
	}
	for _, w := range []RIBWatched{{Router: l.ISPARouter, From: EdgeAAddr6}, {Router: l.ISPBRouter, From: EdgeBAddr6}} {
		paths, err := w.Router.Paths(ctx, SitePrefix6)
		if err != nil {
			return false, err.Error()
		}
		held := false
		for _, p := range paths {
			held = held || p.From == w.From
		}
		if !held {
			return false, fmt.Sprintf("%s does not hold %s from %s", w.Router.Name(), SitePrefix6, w.From)
		}
	}
	return true, ""
}

// MeasureRestart restarts the daemon d (kind RestartPlanned or
// RestartCrash) while flow runs and ISP-A's and ISP-B's RIBs are polled
// every 20 ms for the site /48: it waits for the lab to be steady
// (AwaitSteady), signals d, waits for it to exit, calls
// start for the new process, waits until both ISPs have a new established
// session with the edge, lets settle pass and reports. It returns the new daemon even on a
// measurement error, when one was started.
func (l *Lab) MeasureRestart(ctx context.Context, flow *Flow, d *Daemon, kind string, start func() (*Daemon, error), settle, timeout time.Duration) (*Daemon, RestartMeasurement, error) {
	m := RestartMeasurement{Kind: kind}
	sig := syscall.SIGTERM
	switch kind {
	case RestartPlanned:
	case RestartCrash:
		sig = syscall.SIGKILL
	default:
		return d, m, fmt.Errorf("lab: restart kind %q: want %q or %q", kind, RestartPlanned, RestartCrash)
	}
	if err := l.AwaitSteady(ctx, timeout); err != nil {
		return d, m, fmt.Errorf("before the %s: %w", kind, err)
	}
	type peer struct {
		r    Router
		edge Session
	}
	peers := []*peer{{r: l.ISPARouter}, {r: l.ISPBRouter}}
	edgeAddr := map[Router]RIBWatched{l.ISPARouter: {Router: l.ISPARouter, Prefix: SitePrefix6, From: EdgeAAddr6}, l.ISPBRouter: {Router: l.ISPBRouter, Prefix: SitePrefix6, From: EdgeBAddr6}}
	for _, p := range peers {
		s, err := p.r.Session(ctx, edgeAddr[p.r].From)
		if err != nil {
			return d, m, err
		}
		if !s.Established {
			return d, m, fmt.Errorf("lab: %s's session with the edge is %s before the restart; want established", p.r.Name(), s.State)
		}
		p.edge = s
	}
	watch := WatchRIB(20*time.Millisecond, edgeAddr[l.ISPARouter], edgeAddr[l.ISPBRouter])
	stopWatch := func() { m.RIB = watch.Stop() }
	mark := flow.Mark()
	t0 := time.Now()
	if err := d.Signal(sig); err != nil {
		stopWatch()
		return d, m, err
	}
	select {
	case <-d.Done():
	case <-time.After(timeout):
		stopWatch()
		return d, m, fmt.Errorf("lab: the daemon did not exit within %s of %s", timeout, sig)
	}
	m.Down = time.Since(t0)
	if kind == RestartPlanned && d.err != nil {
		stopWatch()
		return d, m, fmt.Errorf("lab: the daemon's exit after SIGTERM: %v; want status 0", d.err)
	}
	nd, err := start()
	if err != nil {
		stopWatch()
		return d, m, err
	}
	// A new session: established again, and counted (FRR) or stamped
	// (BIRD) differently from the one before.
	for _, p := range peers {
		last := ""
		for {
			s, err := p.r.Session(ctx, edgeAddr[p.r].From)
			if err == nil && s.Established && (s.Resets != p.edge.Resets || s.Since != p.edge.Since) {
				break
			}
			last = fmt.Sprintf("%+v %v", s, err)
			if time.Since(t0) > timeout {
				stopWatch()
				return nd, m, fmt.Errorf("lab: %s has no new session with the edge %s after the %s; last: %s", p.r.Name(), timeout, kind, last)
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				stopWatch()
				return nd, m, err
			}
		}
	}
	m.Back = time.Since(t0)
	if err := sleepCtx(ctx, settle); err != nil {
		stopWatch()
		return nd, m, err
	}
	stopWatch()
	r := flow.ReportSince(mark, 100*time.Millisecond)
	m.Inbound, m.Outbound = r[0], r[1]
	return nd, m, nil
}

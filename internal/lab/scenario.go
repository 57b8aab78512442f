package lab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// Scenario is a fault on ISP-A, its repair, and what the transit should
// hold for the site /48 while the fault lasts (any one of the AS-path sets).
type Scenario struct {
	Name          string
	Fault, Heal   func(context.Context) error
	TransitFailed []string
}

// Transit AS-path sets for the site /48 (see TransitPaths) under
// ScenarioConfig (ISP-B one prepend longer).
var (
	TransitBoth  = []string{"[64501 64500] [64502 64500 64500]"}
	TransitOnlyB = []string{"[64502 64500 64500]"}
)

// Scenarios returns the failure scenarios of DESIGN.md section 6: link
// cut, gray failure and degradation by loss and by latency. The
// degradation scenarios expect ISP-A degraded (three extra prepends via A)
// or down (withdrawn): which one depends on how the probes fare.
func (l *Lab) Scenarios() []Scenario {
	return []Scenario{
		{"link cut", l.CutISPA, l.RestoreISPA, TransitOnlyB},
		{"gray failure", l.GrayFailISPA, l.HealISPA, TransitOnlyB},
		// 30% loss makes ISP-A degraded (the ISPs hear three extra
		// prepends via A) or, when enough probes fail in a row, down
		// (withdrawn); egress prefers B either way.
		{"degradation (30% loss)", func(ctx context.Context) error { return l.DegradeISPA(ctx, 30) }, l.HealISPA,
			[]string{"[64501 64500 64500 64500 64500] [64502 64500 64500]", TransitOnlyB[0]}},
		// 50 ms more round-trip time through ISP-A: above ISP-A's
		// degraded_rtt_enter in the fast ScenarioConfig (40 ms), below
		// the probe timeout (75 ms), so ISP-A is degraded, not down;
		// egress prefers B.
		{"degradation (+50 ms)", func(ctx context.Context) error { return l.DelayISPA(ctx, 50*time.Millisecond) }, l.UndelayISPA,
			[]string{"[64501 64500 64500 64500 64500] [64502 64500 64500]"}},
	}
}

// TransitPaths returns the AS paths the transit holds for the site /48,
// sorted, as one string such as "[64501 64500] [64502 64500]".
func (l *Lab) TransitPaths(ctx context.Context) (string, error) {
	paths, err := l.TransitRouter.Paths(ctx, SitePrefix6)
	if err != nil {
		return "", err
	}
	var got []string
	for _, p := range paths {
		got = append(got, fmt.Sprint(p.ASPath))
	}
	slices.Sort(got)
	return strings.Join(got, " "), nil
}

// EgressDevice returns the device the edge's kernel uses toward the
// internet host.
func (l *Lab) EgressDevice(ctx context.Context) string { return egressDevice(ctx, l.Edge) }

// egressDevice returns the device ns's kernel uses toward the internet
// host: "none" when it has no route, the whole answer when it names no
// device.
func egressDevice(ctx context.Context, ns *netns.NS) string {
	return routeDevice(ctx, ns, InetAddr6)
}

// routeDevice returns the device ns's kernel uses toward dst: "none" when
// it has no route, the whole answer when it names no device (such as a
// blackhole).
func routeDevice(ctx context.Context, ns *netns.NS, dst netip.Addr) string {
	out, err := ns.Run(ctx, "ip", "route", "get", dst.String())
	if err != nil {
		return "none"
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "dev" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return strings.TrimSpace(string(out))
}

// AwaitRouting waits until the transit holds one of transit and the edge's
// egress leaves via dev. It returns how long that took.
func (l *Lab) AwaitRouting(ctx context.Context, transit []string, dev string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	last := ""
	for time.Since(t0) < timeout {
		tp, err := l.TransitPaths(ctx)
		d := l.EgressDevice(ctx)
		if err == nil && slices.Contains(transit, tp) && d == dev {
			return time.Since(t0), nil
		}
		last = fmt.Sprintf("transit=%q egress=%s err=%v", tp, d, err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("lab: transit %v and egress via %s not reached within %s; last: %s", transit, dev, timeout, last)
}

// AwaitISPs waits until the lab's own routing has converged for the
// edge's probes: each ISP routes the internet host (IPv6 and IPv4) toward
// the transit, and the transit routes each ISP's link to the edge toward
// that ISP. Up returns before the routers' sessions are established (ISP-A
// about 1.3 s later, BIRD's ISP-B about 3 s), and an edge started earlier
// loses its first probes, which multihomed then counts in its loss window
// (docs/benchmarks.md: the first gray-failure run). It returns how long it
// waited.
func (l *Lab) AwaitISPs(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	type hop struct {
		ns  *netns.NS
		dst netip.Addr
		dev string
	}
	hops := []hop{
		{l.ISPA, InetAddr6, "eth-tr"}, {l.ISPA, InetAddr4, "eth-tr"},
		{l.ISPB, InetAddr6, "eth-tr"}, {l.ISPB, InetAddr4, "eth-tr"},
		{l.Transit, EdgeAAddr6, "eth-a"}, {l.Transit, EdgeAAddr4, "eth-a"},
		{l.Transit, EdgeBAddr6, "eth-b"}, {l.Transit, EdgeBAddr4, "eth-b"},
	}
	t0 := time.Now()
	for {
		var missing []string
		for _, h := range hops {
			if d := routeDevice(ctx, h.ns, h.dst); d != h.dev {
				missing = append(missing, fmt.Sprintf("%s toward %s: %s, want %s", h.ns.Name, h.dst, d, h.dev))
			}
		}
		if len(missing) == 0 {
			return time.Since(t0), nil
		}
		if time.Since(t0) >= timeout {
			return time.Since(t0), fmt.Errorf("lab: the ISPs and the transit did not converge within %s: %s", timeout, strings.Join(missing, "; "))
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return time.Since(t0), err
		}
	}
}

// Measurement is the outcome of one scenario run.
type Measurement struct {
	Scenario string
	// Converged is from the fault to the transit and the edge's egress
	// having moved; Recovered from the repair to both being back.
	Converged, Recovered time.Duration
	// Inbound (internet host to LAN host) and Outbound (LAN to internet).
	Inbound, Outbound FlowReport
}

// Measure runs s with flow running between the internet host (first end)
// and the LAN host: fault, wait for the move, let the flow settle for
// settle, report the loss windows, repair, wait for the return.
func (l *Lab) Measure(ctx context.Context, flow *Flow, s Scenario, settle, timeout time.Duration) (Measurement, error) {
	m := Measurement{Scenario: s.Name}
	mark := flow.Mark()
	if err := s.Fault(ctx); err != nil {
		return m, err
	}
	var err error
	if m.Converged, err = l.AwaitRouting(ctx, s.TransitFailed, "eth-b", timeout); err != nil {
		_ = s.Heal(ctx)
		return m, fmt.Errorf("%s: %w", s.Name, err)
	}
	select {
	case <-ctx.Done():
		return m, ctx.Err()
	case <-time.After(settle):
	}
	r := flow.ReportSince(mark, 100*time.Millisecond)
	m.Inbound, m.Outbound = r[0], r[1]
	if err := s.Heal(ctx); err != nil {
		return m, err
	}
	if m.Recovered, err = l.AwaitRouting(ctx, TransitBoth, "eth-a", timeout); err != nil {
		return m, fmt.Errorf("%s recovery: %w", s.Name, err)
	}
	return m, nil
}

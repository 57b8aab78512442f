package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// coreLocalPref is the LOCAL_PREF of the core router's first path for p,
// as text. A path that still carries large communities (the speaker's
// marks, which export strips) is reported as such instead.
func coreLocalPref(l *lab.Lab, p netip.Prefix) string {
	paths, err := l.CoreRouter.Paths(ctx, p)
	if err != nil || len(paths) == 0 || paths[0].LocalPref == nil {
		return fmt.Sprintf("none (%v, %d paths)", err, len(paths))
	}
	if lcs := paths[0].LargeCommunities; len(lcs) > 0 {
		return fmt.Sprintf("%d with large communities %v", *paths[0].LocalPref, lcs)
	}
	return fmt.Sprint(*paths[0].LocalPref)
}

// TestFailoverScenarios: with probes through each ISP (fast profile) and a
// steady 1 kHz flow between the internet host and the LAN host, each fault
// on ISP-A moves inbound (the transit's table) and outbound (the edge's
// kernel default) to ISP-B, the flow survives, the loss window each way is
// printed, and recovery restores both. An FRR core router's default route
// LOCAL_PREF follows the edge's health over iBGP.
func TestFailoverScenarios(t *testing.T) {
	t.Parallel()
	cfg := lab.ScenarioConfig(lab.ProfileFast, daemonDir(t), true, false)
	e := start(t, lab.Options{Core: true}, cfg)
	l := e.lab
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
		t.Fatalf("steady state (site via both ISPs, egress via ISP-A): %v", err)
	}
	eventually(t, "core router has the default with LOCAL_PREF 200", 60*time.Second, func() (bool, string) {
		lp := coreLocalPref(l, netip.MustParsePrefix("::/0"))
		return lp == "200", lp
	})

	flow := startLANFlow(t, l)
	awaitCleanFlow(t, flow, "before the faults")
	for _, sc := range l.Scenarios() {
		m, err := l.Measure(ctx, flow, sc, time.Second, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: moved in %s, back in %s; loss window inbound (inet->lan) %s, outbound (lan->inet) %s [%v | %v]",
			sc.Name, m.Converged.Round(time.Millisecond), m.Recovered.Round(time.Millisecond), m.Inbound.LossWindow, m.Outbound.LossWindow, m.Inbound, m.Outbound)
		// The flow survived the failover (packets flowed again before the
		// repair) and runs cleanly after the recovery.
		if m.Inbound.Received == 0 || m.Outbound.Received == 0 {
			t.Errorf("%s: the flow stopped: %v / %v", sc.Name, m.Inbound, m.Outbound)
		}
		awaitCleanFlow(t, flow, sc.Name+" recovered")
	}
	if lp := coreLocalPref(l, netip.MustParsePrefix("::/0")); lp != "200" {
		t.Errorf("core LOCAL_PREF %s after the scenarios; want 200", lp)
	}

	// Only a degraded uplink left: the core router's default drops to the
	// degraded LOCAL_PREF; healing restores 200.
	if err := l.GrayFailISPA(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.DegradeISPB(ctx, 30); err != nil {
		t.Fatal(err)
	}
	eventually(t, "core LOCAL_PREF 100 with ISP-A down and ISP-B degraded", 60*time.Second, func() (bool, string) {
		lp := coreLocalPref(l, netip.MustParsePrefix("::/0"))
		return lp == "100", lp
	})
	if err := l.HealISPA(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.HealISPB(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "core LOCAL_PREF back to 200", 60*time.Second, func() (bool, string) {
		lp := coreLocalPref(l, netip.MustParsePrefix("::/0"))
		return lp == "200", lp
	})
}

// TestFlappingHeldDown: ISP-A's forwarding flaps (gray failure on and off
// every 1.5 s, BGP up throughout). The edge takes ISP-A out at once each
// time, but does not put it back before the controller's hold-down (3 s
// here) has passed, although the probes recover sooner; after the flapping
// stops ISP-A returns.
func TestFlappingHeldDown(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(lab.ScenarioConfig(lab.ProfileFast, daemonDir(t), false, false), "\n  hold_down: 1s\n", "\n  hold_down: 3s\n", 1)
	if !strings.Contains(cfg, "\n  hold_down: 3s\n") {
		t.Fatal("test broken: controller hold_down not found in the scenario config")
	}
	e := start(t, lab.Options{}, cfg)
	l := e.lab
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
		t.Fatalf("steady state: %v", err)
	}
	if err := l.FlapISPA(ctx, l.GrayFailISPA, l.HealISPA, 3, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	took, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ISP-A back %s after the flapping stopped", took.Round(time.Millisecond))
	// From the daemon's decisions: every return of ISP-A came at least the
	// hold-down after it went down, and the hold-down doubled while it
	// flapped.
	var downAt time.Time
	var holds []time.Duration
	for _, line := range strings.Split(e.daemon.Log(), "\n") {
		if !strings.Contains(line, `msg="uplink decision" uplink=isp-a`) {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(strings.Fields(line)[0], "time="))
		if err != nil {
			t.Fatalf("unparsable log line %q: %v", line, err)
		}
		switch {
		case strings.Contains(line, "from=up to=down"):
			downAt = ts
		case strings.Contains(line, "from=down to=up") && !downAt.IsZero():
			holds = append(holds, ts.Sub(downAt))
		}
	}
	t.Logf("ISP-A held out for %v", holds)
	if len(holds) < 2 {
		t.Fatalf("ISP-A came back %d times while flapping 3 times; want at least 2 (log: %s)", len(holds), tail(e.daemon.Log(), 30))
	}
	// Log lines are written after each decision is applied, so they can
	// sit up to a few hundred milliseconds off the decision times.
	const slack = 300 * time.Millisecond
	for _, h := range holds {
		if h < 3*time.Second-slack {
			t.Errorf("ISP-A returned %s after going down, before the 3s hold-down", h)
		}
	}
	if slices.Max(holds) < 6*time.Second-slack {
		t.Errorf("hold-down never doubled while flapping: %v", holds)
	}
}

// TestFailoverBIRDInbound: the lab with BIRD as ISP-A and transit (no FRR
// on the inbound path) fails over and recovers for a link cut and a gray
// failure; the loss windows are printed (docs/benchmarks.md compares them
// with the FRR lab's).
func TestFailoverBIRDInbound(t *testing.T) {
	t.Parallel()
	e := start(t, lab.Options{BIRDInbound: true}, lab.ScenarioConfig(lab.ProfileFast, daemonDir(t), false, true))
	l := e.lab
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
		t.Fatalf("steady state: %v", err)
	}
	flow := startLANFlow(t, l)
	for _, sc := range l.Scenarios()[:2] {
		m, err := l.Measure(ctx, flow, sc, time.Second, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s (BIRD inbound): moved in %s, back in %s; loss window inbound %s, outbound %s",
			sc.Name, m.Converged.Round(time.Millisecond), m.Recovered.Round(time.Millisecond), m.Inbound.LossWindow, m.Outbound.LossWindow)
		if m.Inbound.Received == 0 || m.Outbound.Received == 0 {
			t.Errorf("%s: the flow stopped: %v / %v", sc.Name, m.Inbound, m.Outbound)
		}
	}
}

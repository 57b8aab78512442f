package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

func coreLocalPref(l *lab.Lab, p netip.Prefix) string {
	paths, err := l.CoreRouter.Paths(ctx, p)
	if err != nil || len(paths) == 0 || paths[0].LocalPref == nil {
		return fmt.Sprintf("none (%v, %d paths)", err, len(paths))
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
	cfg := lab.ScenarioConfig(lab.ProfileFast, t.TempDir(), true, false)
	e := start(t, lab.Options{Core: true}, cfg)
	l := e.lab
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
		t.Fatalf("steady state (site via both ISPs, egress via ISP-A): %v", err)
	}
	eventually(t, "core router has the default with LOCAL_PREF 200", 60*time.Second, func() (bool, string) {
		lp := coreLocalPref(l, netip.MustParsePrefix("::/0"))
		return lp == "200", lp
	})

	flow, err := lab.StartFlow(l.Inet, "inet", lab.InetAddr6, l.LAN, "lan", lab.LANAddr6, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Stop()
	flowOK := func(what string) {
		t.Helper()
		eventually(t, what+": the flow runs both ways without loss", 30*time.Second, func() (bool, string) {
			m := flow.Mark()
			time.Sleep(500 * time.Millisecond) // a window to measure over
			r := flow.ReportSince(m, 100*time.Millisecond)
			return r[0].Sent > 100 && r[0].Lost == 0 && r[1].Sent > 100 && r[1].Lost == 0, fmt.Sprintf("%v / %v", r[0], r[1])
		})
	}
	flowOK("before the faults")
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
		flowOK(sc.Name + " recovered")
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

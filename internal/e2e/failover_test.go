package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// transitPaths returns the AS paths the transit holds for the site /48.
func transitPaths(l *lab.Lab) (string, error) {
	paths, err := l.TransitRouter.Paths(ctx, lab.SitePrefix6)
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

// egressDevice returns the device the edge's kernel uses toward the
// internet host.
func egressDevice(l *lab.Lab) string {
	out, err := l.Edge.Run(ctx, "ip", "-6", "route", "get", lab.InetAddr6.String())
	if err != nil {
		return "none (" + err.Error() + ")"
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "dev" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return strings.TrimSpace(string(out))
}

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
	health := lab.HealthBlock(lab.ProfileFast)
	cfg := lab.EdgeConfig(map[string]string{"isp-a": health, "isp-b": health}) + lab.ControllerBlock(lab.ProfileFast, t.TempDir()) + lab.EdgeIBGP()
	e := start(t, lab.Options{Core: true}, cfg)
	l := e.lab
	both := []string{"[64501 64500] [64502 64500]"}
	onlyB := []string{"[64502 64500]"}
	// await waits until the transit holds one of wantTransit (AS paths of
	// the site /48) and the edge's kernel sends to the internet host via
	// wantDev.
	await := func(what string, wantTransit []string, wantDev string) time.Duration {
		t.Helper()
		t0 := time.Now()
		eventually(t, what, 90*time.Second, func() (bool, string) {
			tp, err := transitPaths(l)
			if err != nil {
				return false, err.Error()
			}
			dev := egressDevice(l)
			return slices.Contains(wantTransit, tp) && dev == wantDev, fmt.Sprintf("transit=%q egress=%s", tp, dev)
		})
		return time.Since(t0)
	}
	await("steady state: site via both ISPs, egress via ISP-A", both, "eth-a")
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

	scenarios := []struct {
		name          string
		fault, heal   func(context.Context) error
		transitFailed []string
	}{
		{"link cut", l.CutISPA, l.RestoreISPA, onlyB},
		{"gray failure", l.GrayFailISPA, l.HealISPA, onlyB},
		// 30% loss makes ISP-A degraded (the ISPs hear a longer path via A:
		// three extra prepends) or, when enough probes fail in a row, down
		// (withdrawn); egress prefers B either way.
		{"degradation (30% loss)", func(ctx context.Context) error { return l.DegradeISPA(ctx, 30) }, l.HealISPA,
			[]string{"[64501 64500 64500 64500 64500] [64502 64500]", "[64502 64500]"}},
	}
	for _, sc := range scenarios {
		mark := flow.Mark()
		if err := sc.fault(ctx); err != nil {
			t.Fatal(err)
		}
		took := await(sc.name+": site via ISP-B at the transit, edge egress via ISP-B", sc.transitFailed, "eth-b")
		flowOK(sc.name)
		r := flow.ReportSince(mark, 100*time.Millisecond)
		t.Logf("%s: converged in %s; loss window inbound (inet->lan) %s, outbound (lan->inet) %s [%v | %v]",
			sc.name, took.Round(time.Millisecond), r[0].LossWindow, r[1].LossWindow, r[0], r[1])
		if lp := coreLocalPref(l, netip.MustParsePrefix("::/0")); lp != "200" {
			t.Errorf("%s: core LOCAL_PREF %s while ISP-B is up; want 200", sc.name, lp)
		}
		if err := sc.heal(ctx); err != nil {
			t.Fatal(err)
		}
		took = await(sc.name+" recovered: via both ISPs, egress back on ISP-A", both, "eth-a")
		t.Logf("%s: recovered in %s", sc.name, took.Round(time.Millisecond))
		flowOK(sc.name + " recovered")
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

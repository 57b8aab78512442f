package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// insideInstallTable is the edge's bgp.install table in TestInsideFullTables.
const insideInstallTable = 4321

// coreRoute is the FRR core's best path to a prefix.
type coreRoute struct {
	LocalPref uint32
	NextHop   netip.Addr
}

// coreTable reads the core's IPv6 table: prefix -> best path.
func coreTable(l *lab.Lab) (map[netip.Prefix]coreRoute, error) {
	var v struct {
		Routes map[string][]struct {
			Best      bool   `json:"bestpath"`
			LocalPref uint32 `json:"locPrf"`
			NextHops  []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
		} `json:"routes"`
	}
	if err := l.CoreRouter.JSON(ctx, "show bgp ipv6 unicast json", &v); err != nil {
		return nil, err
	}
	out := map[netip.Prefix]coreRoute{}
	for s, paths := range v.Routes {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("core route %q: %w", s, err)
		}
		for _, path := range paths {
			if !path.Best || len(path.NextHops) == 0 {
				continue
			}
			nh, err := netip.ParseAddr(path.NextHops[0].IP)
			if err != nil {
				return nil, fmt.Errorf("core route %s: next hop %q: %w", p, path.NextHops[0].IP, err)
			}
			out[p] = coreRoute{LocalPref: path.LocalPref, NextHop: nh}
		}
	}
	return out, nil
}

// checkCore compares the core's table with what it should hold: each of
// want at its LOCAL_PREF via the edge, and none of gone. It returns "" when
// all holds, else what differs (the first few).
func checkCore(l *lab.Lab, want map[netip.Prefix]uint32, gone []netip.Prefix) string {
	tab, err := coreTable(l)
	if err != nil {
		return err.Error()
	}
	var bad []string
	for p, lp := range want {
		if r, ok := tab[p]; !ok || r.LocalPref != lp || r.NextHop != lab.EdgeLANAddr6 {
			bad = append(bad, fmt.Sprintf("%s: %+v (present %v), want LOCAL_PREF %d via %s", p, r, ok, lp, lab.EdgeLANAddr6))
		}
	}
	for _, p := range gone {
		if r, ok := tab[p]; ok {
			bad = append(bad, fmt.Sprintf("%s: still there (%+v)", p, r))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d routes differ (core holds %d), e.g. %s", len(bad), len(want)+len(gone), len(tab), strings.Join(bad[:min(3, len(bad))], "; "))
}

// prefs gives every prefix of each list its LOCAL_PREF.
func prefs(lists ...any) map[netip.Prefix]uint32 {
	out := map[netip.Prefix]uint32{}
	for i := 0; i < len(lists); i += 2 {
		for _, p := range lists[i].([]netip.Prefix) {
			out[p] = lists[i+1].(uint32)
		}
	}
	return out
}

// installDevices returns the devices the edge's install-table route to p
// leaves by: route -> nexthop group -> its legs.
func installDevices(l *lab.Lab, p netip.Prefix) (string, error) {
	out, err := l.Edge.Run(ctx, "ip", "-j", "-6", "route", "show", "table", fmt.Sprint(insideInstallTable), p.String())
	if err != nil {
		return "", err
	}
	var routes []struct {
		NHID int `json:"nhid"`
	}
	if err := json.Unmarshal(out, &routes); err != nil || len(routes) != 1 || routes[0].NHID == 0 {
		return "", fmt.Errorf("route %s in table %d: %s (%v)", p, insideInstallTable, out, err)
	}
	type nexthop struct {
		Group []struct {
			ID int `json:"id"`
		} `json:"group"`
		Dev       string `json:"dev"`
		Blackhole any    `json:"blackhole"`
	}
	show := func(id int) (nexthop, error) {
		out, err := l.Edge.Run(ctx, "ip", "-j", "nexthop", "show", "id", fmt.Sprint(id))
		if err != nil {
			return nexthop{}, err
		}
		var nhs []nexthop
		if err := json.Unmarshal(out, &nhs); err != nil || len(nhs) != 1 {
			return nexthop{}, fmt.Errorf("nexthop %d: %s (%v)", id, out, err)
		}
		return nhs[0], nil
	}
	nh, err := show(routes[0].NHID)
	if err != nil {
		return "", err
	}
	if len(nh.Group) == 0 {
		return nh.Dev, nil
	}
	var devs []string
	for _, g := range nh.Group {
		leg, err := show(g.ID)
		if err != nil {
			return "", err
		}
		if leg.Blackhole != nil {
			devs = append(devs, "blackhole")
		}
		if leg.Dev != "" {
			devs = append(devs, leg.Dev)
		}
	}
	return strings.Join(devs, ","), nil
}

// TestInsideFullTables: ISP-A and ISP-B (both FRR) send a few thousand
// routes each, some destinations from both, some from one only; the edge
// takes both tables (import: full), installs them (bgp.install) and
// advertises them to the FRR core (ibgp.advertise: full). The core holds
// every destination at LOCAL_PREF 200 via the edge, the kernel each ISP's
// own destinations via its uplink and the shared ones via ISP-A (lower
// router ID); neither ISP hears the other's routes, then or after ISP-A's
// gray failure. ISP-A degraded (added delay) demotes its own
// destinations to 100 and moves the shared ones to ISP-B. A gray failure of ISP-A (its BGP stays up) withdraws
// ISP-A's own destinations from the core, keeps the shared ones via
// ISP-B's path at 200, and moves the kernel routes of both off eth-a; the
// repair brings it all back.
func TestInsideFullTables(t *testing.T) {
	t.Parallel()
	const routesA, routesB = 2500, 2500
	ft := lab.Tables(routesA, routesB)
	h := lab.HealthBlock(lab.ProfileFast)
	// ISP-A's RTT thresholds below the probe timeout, as in the failover
	// scenarios: 50 ms more delay makes it degraded, not down.
	ha := h + "      degraded_rtt_enter: 40ms\n      degraded_rtt_leave: 20ms\n"
	full := "      import: full\n      max_prefixes: 10000\n"
	cfg := lab.EdgeConfig(map[string]string{"isp-a": full + ha, "isp-b": "      prepend: 1\n" + full + h}) +
		lab.ControllerBlock(lab.ProfileFast, daemonDir(t), false) +
		strings.Replace(lab.EdgeIBGP(), "ibgp:\n", "ibgp:\n  advertise: full\n", 1) +
		fmt.Sprintf("bgp:\n  install:\n    table: %d\n", insideInstallTable)
	e := start(t, lab.Options{Core: true, ISPAPlainRoutes: routesA, ISPBFRR: true, ISPBPlainRoutes: routesB}, cfg)
	l := e.lab
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
		t.Fatalf("steady state (site via both ISPs, egress via ISP-A): %v", err)
	}
	t.Logf("%d destinations from ISP-A only, %d from both, %d from ISP-B only", len(ft.OnlyA), len(ft.Shared), len(ft.OnlyB))

	allUp := prefs(ft.OnlyA, uint32(200), ft.Shared, uint32(200), ft.OnlyB, uint32(200))
	eventually(t, "core holds every destination at LOCAL_PREF 200 via the edge", 120*time.Second, func() (bool, string) {
		s := checkCore(l, allUp, nil)
		return s == "", s
	})
	if lp := coreLocalPref(l, netip.MustParsePrefix("::/0")); lp != "200" {
		t.Errorf("core's default: LOCAL_PREF %s; want the edge's own, 200", lp)
	}
	// No transit: each ISP hears at most the site prefix from the edge,
	// though the edge holds the other's whole table; siteVia names the
	// ISPs that must hear it.
	noTransit := func(when string, siteVia ...string) {
		t.Helper()
		for name, isp := range map[string]struct {
			r    lab.Router
			edge netip.Addr
		}{"ISP-A": {l.ISPARouter, lab.EdgeAAddr6}, "ISP-B": {l.ISPBRouter, lab.EdgeBAddr6}} {
			got, err := isp.r.(*lab.FRR).Received(ctx, isp.edge)
			onlySite := !slices.ContainsFunc(got, func(p netip.Prefix) bool { return p != lab.SitePrefix6 })
			if err != nil || !onlySite || slices.Contains(siteVia, name) && !slices.Contains(got, lab.SitePrefix6) {
				t.Errorf("%s: %s received %v (%v) from the edge; want nothing but %s (which it must hear: %v)", when, name, got, err, lab.SitePrefix6, slices.Contains(siteVia, name))
			}
		}
	}
	noTransit("all up", "ISP-A", "ISP-B")
	onlyA, shared, onlyB := ft.OnlyA[len(ft.OnlyA)/2], ft.Shared[len(ft.Shared)/2], ft.OnlyB[len(ft.OnlyB)/2]
	kernel := func(what string, want map[netip.Prefix]string) {
		t.Helper()
		eventually(t, what, 60*time.Second, func() (bool, string) {
			var bad []string
			for p, dev := range want {
				got, err := installDevices(l, p)
				if err != nil || got != dev {
					bad = append(bad, fmt.Sprintf("%s via %q (%v), want %s", p, got, err, dev))
				}
			}
			return len(bad) == 0, strings.Join(bad, "; ")
		})
	}
	// Shared destinations: both paths tie up to the router ID (same
	// LOCAL_PREF, AS path length, origin; no MED, as the neighbor ASes
	// differ), where ISP-A's 198.18.1.1 beats ISP-B's 198.18.2.1. GoBGP
	// compares router IDs before age, so this does not depend on which
	// ISP's table arrived first.
	kernel("kernel install: each ISP's own destination via its uplink, the shared via ISP-A (router ID)",
		map[netip.Prefix]string{onlyA: "eth-a", shared: "eth-a", onlyB: "eth-b"})

	// Degraded: ISP-A's own destinations demoted at the core, the shared
	// ones now best via ISP-B (here and at the core); ISP-A keeps egress,
	// so its own stay on eth-a in the kernel.
	if err := l.DelayISPA(ctx, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	degraded := prefs(ft.OnlyA, uint32(100), ft.Shared, uint32(200), ft.OnlyB, uint32(200))
	eventually(t, "ISP-A degraded: its own destinations at LOCAL_PREF 100 at the core, the rest at 200", 60*time.Second, func() (bool, string) {
		s := checkCore(l, degraded, nil)
		return s == "", s
	})
	kernel("kernel install: the shared destination moved to eth-b", map[netip.Prefix]string{onlyA: "eth-a", shared: "eth-b", onlyB: "eth-b"})
	if err := l.UndelayISPA(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ISP-A up again: every destination at 200", 60*time.Second, func() (bool, string) {
		s := checkCore(l, allUp, nil)
		return s == "", s
	})

	if err := l.GrayFailISPA(ctx); err != nil {
		t.Fatal(err)
	}
	afterFail := prefs(ft.Shared, uint32(200), ft.OnlyB, uint32(200))
	eventually(t, "ISP-A down: its own destinations withdrawn from the core, the shared ones via ISP-B at 200", 60*time.Second, func() (bool, string) {
		s := checkCore(l, afterFail, ft.OnlyA)
		return s == "", s
	})
	if s, _ := l.ISPARouter.Session(ctx, lab.EdgeAAddr6); !s.Established {
		t.Errorf("ISP-A's session is %s; a gray failure keeps BGP up (the test would prove nothing about health)", s.State)
	}
	kernel("kernel install: nothing leaves by eth-a", map[netip.Prefix]string{onlyA: "eth-b", shared: "eth-b", onlyB: "eth-b"})
	// Still no transit while ISP-B's path is best for everything ISP-A
	// also sent (ISP-A may or may not keep the site prefix, by its
	// down_action).
	noTransit("ISP-A gray failure", "ISP-B")

	if err := l.HealISPA(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ISP-A back: the core holds every destination at 200 again", 90*time.Second, func() (bool, string) {
		s := checkCore(l, allUp, nil)
		return s == "", s
	})
	kernel("kernel install: ISP-A's destinations back on eth-a", map[netip.Prefix]string{onlyA: "eth-a", onlyB: "eth-b"})

	// ISP-A's nexthop group removed behind the daemon's back (as the
	// kernel does, with every route using it, when the device of its
	// last leg loses its carrier): the BGP session and GoBGP's copy of
	// ISP-A's table stay. At the next read-back (controller.resync at
	// the latest) the installer finds the group gone and replays the
	// best paths: ISP-A's destinations come back without a re-import.
	before, err := l.ISPARouter.Session(ctx, lab.EdgeAAddr6)
	if err != nil || !before.Established {
		t.Fatalf("ISP-A's session before: %+v (%v)", before, err)
	}
	out, err := l.Edge.Run(ctx, "ip", "-j", "-6", "route", "show", "table", fmt.Sprint(insideInstallTable), onlyA.String())
	var routes []struct {
		NHID int `json:"nhid"`
	}
	if err != nil || json.Unmarshal(out, &routes) != nil || len(routes) != 1 || routes[0].NHID == 0 {
		t.Fatalf("the route to %s: %s (%v)", onlyA, out, err)
	}
	if _, err := l.Edge.Run(ctx, "ip", "nexthop", "del", "id", fmt.Sprint(routes[0].NHID)); err != nil {
		t.Fatal(err)
	}
	if out, _ := l.Edge.Run(ctx, "ip", "-6", "route", "show", "table", fmt.Sprint(insideInstallTable), onlyA.String()); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("the kernel kept the route to %s after its group went: %s; the test's premise is wrong", onlyA, out)
	}
	kernel("after the kernel removed ISP-A's group and routes: back on eth-a by a replay", map[netip.Prefix]string{onlyA: "eth-a", onlyB: "eth-b"})
	if after, err := l.ISPARouter.Session(ctx, lab.EdgeAAddr6); err != nil || after.Resets != before.Resets {
		t.Errorf("ISP-A's session was reset (%+v -> %+v, %v): the routes may have come back by a re-import, not the replay", before, after, err)
	}
}

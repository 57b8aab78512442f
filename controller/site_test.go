package controller

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/routing"
)

var (
	edge1Addr = netip.MustParseAddr("2001:db8:ffff::1")
	edge2Addr = netip.MustParseAddr("2001:db8:ffff::2")
	coreAddr  = netip.MustParseAddr("2001:db8:ffff::10")
)

// addrCmp compares netip.Addr values (cmp cannot see their fields).
var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// edgeConfig is one edge of a two-edge site: one probed uplink, the other
// edge as an edge peer on eth-lan and a core router.
func edgeConfig(t testing.TB, routerID, uplink string, peer netip.Addr, mode config.EgressMode) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test", []byte(fmt.Sprintf(`
profile: lab
node: {router_id: %s, asn: 64500}
site: {prefixes: [2001:db8:face::/48]}
egress: {mode: %s}
bgp: {listen_port: 179}
controller: {startup_wait: 30s, hold_down: 10s, hold_down_max: 80s, drain_grace: 60s}
ibgp:
  peers:
    - {neighbor: "%s", role: edge, interface: eth-lan}
    - {neighbor: "%s"}
uplinks:
  - name: %s
    interface: eth-%s
    bgp: {peer_asn: 64501, neighbor: "2001:db8:1000:1::1"}
    health: {targets: ["icmp://2001:db8:9000:1::10"]}
`, routerID, mode, peer, coreAddr, uplink, uplink)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func oneUplink(name string, v health.Verdict, established int) map[string]UplinkObservation {
	return map[string]UplinkObservation{name: {Probed: true, Health: v, HealthReason: string(v), Sessions: 1, Established: established}}
}

func remote(state string) []routing.RemoteUplink {
	return []routing.RemoteUplink{{Edge: netip.MustParseAddr("198.51.100.2"), Neighbor: edge2Addr, Uplink: "isp-b", State: state}}
}

var edge2Default = []routing.RemoteDefault{{Neighbor: edge2Addr, Dst: netip.MustParsePrefix("::/0"), NextHop: edge2Addr}}

// TestSiteWideFailStatic: a lone uplink is withdrawn when another edge
// has a usable uplink, and held (fail-static) only when none of the
// site's uplinks is usable; the other edge's default is the egress then.
func TestSiteWideFailStatic(t *testing.T) {
	later := t0.Add(time.Minute)
	tests := []struct {
		name        string
		mode        config.EgressMode
		verdict     health.Verdict
		remote      []routing.RemoteUplink
		defaults    []routing.RemoteDefault
		want        string
		wantEdge    []EdgeEgress
		wantRemoteN int
	}{
		{name: "alone and down: fail-static", verdict: health.VerdictDown,
			want: "isp-a:down[prepend=0 comms=[] egress=2100] FAIL-STATIC lp=100"},
		{name: "down, the other edge up: withdrawn, egress via the other edge", verdict: health.VerdictDown, remote: remote("up"), defaults: edge2Default,
			want:     "isp-a:down[withdrawn egress=-] lp=0",
			wantEdge: []EdgeEgress{{Neighbor: edge2Addr, Device: "eth-lan", Gateway: edge2Addr, Metric: 3100}}, wantRemoteN: 1},
		{name: "down, the other edge degraded: withdrawn", verdict: health.VerdictDown, remote: remote("degraded"), defaults: edge2Default,
			want:     "isp-a:down[withdrawn egress=-] lp=0",
			wantEdge: []EdgeEgress{{Neighbor: edge2Addr, Device: "eth-lan", Gateway: edge2Addr, Metric: 3100}}, wantRemoteN: 1},
		{name: "down, the other edge down too: fail-static", verdict: health.VerdictDown, remote: remote("down"),
			want: "isp-a:down[prepend=0 comms=[] egress=2100] FAIL-STATIC lp=100"},
		{name: "down, the other edge's uplink drained: fail-static", verdict: health.VerdictDown, remote: remote("drained"),
			want: "isp-a:down[prepend=0 comms=[] egress=2100] FAIL-STATIC lp=100"},
		{name: "down, the other edge's uplink up but stale (session down): fail-static", verdict: health.VerdictDown,
			remote: []routing.RemoteUplink{{Edge: netip.MustParseAddr("198.51.100.2"), Neighbor: edge2Addr, Uplink: "isp-b", State: "up", Stale: true}},
			want:   "isp-a:down[prepend=0 comms=[] egress=2100] FAIL-STATIC lp=100"},
		{name: "down, the other edge unknown (starting): fail-static", verdict: health.VerdictDown, remote: remote("unknown"),
			want: "isp-a:down[prepend=0 comms=[] egress=2100] FAIL-STATIC lp=100"},
		{name: "up: the other edge's default stays behind the local one", verdict: health.VerdictUp, remote: remote("up"), defaults: edge2Default,
			want:     "isp-a:up[prepend=0 comms=[] egress=100] lp=200",
			wantEdge: []EdgeEgress{{Neighbor: edge2Addr, Device: "eth-lan", Gateway: edge2Addr, Metric: 3100}}, wantRemoteN: 1},
		{name: "up, ECMP: the other edge's default only without local egress", mode: config.EgressECMP, verdict: health.VerdictUp, remote: remote("up"), defaults: edge2Default,
			want: "isp-a:up[prepend=0 comms=[] egress=100] lp=200", wantRemoteN: 1},
		{name: "down, ECMP: via the other edge", mode: config.EgressECMP, verdict: health.VerdictDown, remote: remote("up"), defaults: edge2Default,
			want:     "isp-a:down[withdrawn egress=-] lp=0",
			wantEdge: []EdgeEgress{{Neighbor: edge2Addr, Device: "eth-lan", Gateway: edge2Addr, Metric: 3100}}, wantRemoteN: 1},
		{name: "a default from the core is not egress", verdict: health.VerdictDown, remote: remote("up"),
			defaults: []routing.RemoteDefault{{Neighbor: coreAddr, Dst: netip.MustParsePrefix("::/0"), NextHop: coreAddr}},
			want:     "isp-a:down[withdrawn egress=-] lp=0", wantRemoteN: 1},
		{name: "a next hop of the other family falls back to the neighbor", verdict: health.VerdictDown, remote: remote("up"),
			defaults: []routing.RemoteDefault{{Neighbor: edge2Addr, Dst: netip.MustParsePrefix("::/0"), NextHop: netip.MustParseAddr("198.51.100.2")}},
			want:     "isp-a:down[withdrawn egress=-] lp=0",
			wantEdge: []EdgeEgress{{Neighbor: edge2Addr, Device: "eth-lan", Gateway: edge2Addr, Metric: 3100}}, wantRemoteN: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mode := tc.mode
			if mode == "" {
				mode = config.EgressFailover
			}
			cfg := edgeConfig(t, "198.51.100.1", "isp-a", edge2Addr, mode)
			obs := Observed{Now: later, Started: t0, Uplinks: oneUplink("isp-a", tc.verdict, 1),
				Remote: routing.SiteView{Uplinks: tc.remote, Defaults: tc.defaults}}
			d := Decide(cfg, obs)
			if got := summary(d); got != tc.want {
				t.Errorf("decision\n got %s\nwant %s", got, tc.want)
			}
			if diff := cmp.Diff(tc.wantEdge, d.EdgeEgress, addrCmp); diff != "" {
				t.Errorf("edge egress (-want +got):\n%s", diff)
			}
			if d.RemoteUsable != tc.wantRemoteN {
				t.Errorf("RemoteUsable = %d, want %d", d.RemoteUsable, tc.wantRemoteN)
			}
			wantState := []routing.UplinkState{{Uplink: "isp-a", State: string(d.Uplinks[0].State)}}
			if diff := cmp.Diff(wantState, d.SiteState); diff != "" {
				t.Errorf("site state (-want +got):\n%s", diff)
			}
			// Idempotent: the same inputs with the memory it produced.
			obs.Memory = d.Memory
			if again := Decide(cfg, obs); summary(again) != summary(d) || !slices.Equal(again.EdgeEgress, d.EdgeEgress) {
				t.Errorf("second pass differs: %s", summary(again))
			}
		})
	}
}

// TestSiteStateWhileWaiting: during the startup wait an edge tells the
// others its uplinks are unknown (not usable), whatever it restored.
func TestSiteStateWhileWaiting(t *testing.T) {
	cfg := edgeConfig(t, "198.51.100.1", "isp-a", edge2Addr, config.EgressFailover)
	d := Decide(cfg, Observed{Now: t0.Add(time.Second), Started: t0, Uplinks: oneUplink("isp-a", health.VerdictUnknown, 1)})
	if !d.Waiting {
		t.Fatal("not waiting")
	}
	if diff := cmp.Diff([]routing.UplinkState{{Uplink: "isp-a", State: "unknown"}}, d.SiteState); diff != "" {
		t.Errorf("site state (-want +got):\n%s", diff)
	}
}

// TestDecommissionDropsEdgeEgress: a decommissioned edge routes nothing,
// not even to another edge.
func TestDecommissionDropsEdgeEgress(t *testing.T) {
	cfg := edgeConfig(t, "198.51.100.1", "isp-a", edge2Addr, config.EgressFailover)
	obs := Observed{Now: t0.Add(time.Hour), Started: t0, Uplinks: oneUplink("isp-a", health.VerdictUp, 1), DecommissionSince: t0.Add(time.Minute),
		Remote: routing.SiteView{Uplinks: remote("up"), Defaults: edge2Default}}
	d := Decide(cfg, obs)
	if !d.Decommissioned || len(d.EdgeEgress) > 0 || len(EgressPaths(cfg, d)) > 0 {
		t.Fatalf("decommissioned %v, edge egress %v, paths %v", d.Decommissioned, d.EdgeEgress, EgressPaths(cfg, d))
	}
}

// siteViewOf is what an edge with router ID id, reached at neighbor,
// tells the other through iBGP after deciding d: its uplinks' states, and
// its defaults while it sends them to internal peers.
func siteViewOf(id string, neighbor netip.Addr, d Desired) routing.SiteView {
	var v routing.SiteView
	for _, s := range d.SiteState {
		v.Uplinks = append(v.Uplinks, routing.RemoteUplink{Edge: netip.MustParseAddr(id), Neighbor: neighbor, Uplink: s.Uplink, State: s.State})
	}
	if d.DefaultLocalPref > 0 {
		v.Defaults = []routing.RemoteDefault{{Neighbor: neighbor, Dst: netip.MustParsePrefix("::/0"), NextHop: neighbor}}
	}
	return v
}

// TestRandomTwoEdgeSequences runs two edges, each deciding on what the
// other last told it, through random verdicts, sessions, carrier and
// drains, with the exchange lagging a step behind as iBGP does. After
// every step it checks the per-edge rules; after letting the exchange
// settle (the inputs held still) it checks the site-wide ones: the site
// is never isolated while an ISP session is up, fail-static happens only
// when no uplink of the whole site is usable (and then every edge with a
// session announces), and traffic is never sent from edge to edge and back.
func TestRandomTwoEdgeSequences(t *testing.T) {
	verdicts := []health.Verdict{health.VerdictUp, health.VerdictDegraded, health.VerdictDown, health.VerdictUnknown}
	for seed := uint64(0); seed < 100; seed++ {
		rng := rand.New(rand.NewPCG(seed, 16))
		mode := []config.EgressMode{config.EgressFailover, config.EgressECMP}[rng.IntN(2)]
		cfgs := [2]*config.Config{
			edgeConfig(t, "198.51.100.1", "isp-a", edge2Addr, mode),
			edgeConfig(t, "198.51.100.2", "isp-b", edge1Addr, mode),
		}
		ids := [2]string{"198.51.100.1", "198.51.100.2"}
		addrs := [2]netip.Addr{edge1Addr, edge2Addr}
		names := [2]string{"isp-a", "isp-b"}
		var mem [2]map[string]Memory
		var last [2]Desired
		overrides := [2]map[string]Override{{}, {}}
		now := t0
		for step := 0; step < 200; step++ {
			now = now.Add(time.Duration(rng.IntN(8000)) * time.Millisecond)
			var ups [2]map[string]UplinkObservation
			for i := range 2 {
				o := UplinkObservation{Probed: true, Health: verdicts[rng.IntN(4)], Sessions: 1, Established: rng.IntN(2), CarrierDown: rng.IntN(10) == 0}
				if o.CarrierDown {
					o.Established = 0
				}
				ups[i] = map[string]UplinkObservation{names[i]: o}
				if rng.IntN(25) == 0 {
					overrides[i] = map[string]Override{names[i]: {Drain: rng.IntN(2) == 0, ForceDown: rng.IntN(3) == 0, Since: now, Expires: now.Add(time.Duration(rng.IntN(120)) * time.Second)}}
				}
			}
			decide := func(i int) Desired {
				other := 1 - i
				o := Observed{Now: now, Started: t0, StartupDone: last[i].StartupDone, Uplinks: ups[i], Memory: mem[i], Overrides: overrides[i],
					Remote: siteViewOf(ids[other], addrs[other], last[other])}
				d := Decide(cfgs[i], o)
				where := fmt.Sprintf("seed %d step %d edge-%d", seed, step, i+1)
				checkEdgeRules(t, cfgs[i], o, d, where)
				mem[i], last[i] = d.Memory, d
				return d
			}
			// One edge decides first, on the other's previous word.
			first := rng.IntN(2)
			decide(first)
			decide(1 - first)
			// Settle: the inputs stay, the edges exchange until nothing
			// changes (two rounds suffice; four are allowed).
			for round := 0; round < 4; round++ {
				before := [2]string{summary(last[0]), summary(last[1])}
				decide(0)
				decide(1)
				if before == [2]string{summary(last[0]), summary(last[1])} {
					break
				}
			}
			checkSiteRules(t, ups, last, fmt.Sprintf("seed %d step %d (settled)", seed, step))
		}
	}
}

// checkEdgeRules holds after every single decision.
func checkEdgeRules(t *testing.T, cfg *config.Config, o Observed, d Desired, where string) {
	t.Helper()
	usable := remoteUsable(o.Remote)
	if d.FailStatic && usable > 0 {
		t.Fatalf("%s: fail-static although %d uplinks of other edges are usable: %s", where, usable, summary(d))
	}
	if !d.Waiting && usable == 0 && len(d.Announcements()) == 0 && o.DecommissionSince.IsZero() {
		for _, u := range o.Uplinks {
			if u.Established > 0 {
				t.Fatalf("%s: nothing usable anywhere, a session up, nothing announced: %s", where, summary(d))
			}
		}
	}
	localMax, localEgress := 0, false
	for _, p := range EgressPaths(cfg, d) {
		if _, isUplink := uplinkConfig(cfg, p.Uplink); isUplink {
			localMax, localEgress = max(localMax, p.Metric), true
		}
	}
	for _, e := range d.EdgeEgress {
		if localEgress && cfg.Egress.Mode == config.EgressECMP {
			t.Fatalf("%s: ECMP egress via %s next to a local uplink", where, e.Neighbor)
		}
		if e.Metric <= localMax {
			t.Fatalf("%s: egress via the other edge (metric %d) not behind every local uplink (up to %d)", where, e.Metric, localMax)
		}
		if !slices.ContainsFunc(o.Remote.Defaults, func(r routing.RemoteDefault) bool { return r.Neighbor == e.Neighbor }) {
			t.Fatalf("%s: egress via %s, which sends no default", where, e.Neighbor)
		}
	}
	// Only the edge's own uplinks set the LOCAL_PREF it gives the core.
	if d.DefaultLocalPref > 0 && !slices.ContainsFunc(d.Uplinks, func(x Decision) bool { return x.Egress }) {
		t.Fatalf("%s: default sent to the core with no local egress: %s", where, summary(d))
	}
}

// checkSiteRules holds once the edges agree.
func checkSiteRules(t *testing.T, ups [2]map[string]UplinkObservation, d [2]Desired, where string) {
	t.Helper()
	anyUsable, anySession := false, false
	for i := range 2 {
		for _, s := range d[i].SiteState {
			anyUsable = anyUsable || routing.Usable(s.State)
		}
		for _, u := range ups[i] {
			anySession = anySession || u.Established > 0
		}
	}
	waiting := d[0].Waiting || d[1].Waiting
	if anySession && !waiting && len(d[0].Announcements())+len(d[1].Announcements()) == 0 {
		t.Fatalf("%s: the site is isolated with a session up:\n edge-1 %s\n edge-2 %s", where, summary(d[0]), summary(d[1]))
	}
	for i := range 2 {
		if d[i].FailStatic && anyUsable {
			t.Fatalf("%s: edge-%d in fail-static although an uplink of the site is usable:\n edge-1 %s\n edge-2 %s", where, i+1, summary(d[0]), summary(d[1]))
		}
		hasSession := false
		for _, u := range ups[i] {
			hasSession = hasSession || u.Established > 0
		}
		if !anyUsable && !waiting && hasSession && len(d[i].Announcements()) == 0 {
			t.Fatalf("%s: nothing usable in the site, edge-%d has a session and announces nothing: %s", where, i+1, summary(d[i]))
		}
	}
	// No loop: an edge that sends everything to the other edge needs the
	// other edge to have egress of its own.
	for i := range 2 {
		onlyRemote := len(d[i].EdgeEgress) > 0 && !slices.ContainsFunc(d[i].Uplinks, func(x Decision) bool { return x.Egress })
		otherLocal := slices.ContainsFunc(d[1-i].Uplinks, func(x Decision) bool { return x.Egress })
		if onlyRemote && !otherLocal {
			t.Fatalf("%s: edge-%d sends everything to edge-%d, which has no egress of its own", where, i+1, 2-i)
		}
	}
}

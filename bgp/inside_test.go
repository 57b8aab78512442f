package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/multihomed/multihomed/config"
)

// insideConfig is loopbackConfig with both uplinks on import: full, a core
// peer at 127.0.0.4 and, with advertise, ibgp.advertise: full.
func insideConfig(t *testing.T, advertise bool) *config.Config {
	t.Helper()
	adv := ""
	if advertise {
		adv = "advertise: full, "
	}
	cfg, err := config.Parse("test", []byte(`
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: [198.51.100.0/24]}
bgp: {graceful_restart: false}
ibgp: {`+adv+`peers: [{neighbor: 127.0.0.4, local_address: 127.0.0.1, hold_time: 9s, connect_retry: 1s}]}
uplinks:
  - name: isp-a
    interface: lo
    bgp: {peer_asn: 64501, neighbor: 127.0.0.2, local_address: 127.0.0.1, hold_time: 9s, connect_retry: 1s, import: full}
  - name: isp-b
    interface: lo
    bgp: {peer_asn: 64502, neighbor: 127.0.0.3, local_address: 127.0.0.1, hold_time: 9s, connect_retry: 1s, import: full}
`), nil)
	must(t, err)
	return cfg
}

// firstMatch evaluates an export policy the way GoBGP does for the few
// conditions it uses: the first statement whose conditions all hold
// decides; none holding is the assignment's default, REJECT.
type exportRoute struct {
	local, default_, notInside bool
	to                         netip.Addr
	large                      []string // large communities besides the not-inside mark
}

func firstMatch(t *testing.T, req *api.SetPoliciesRequest, r exportRoute) (string, api.RouteAction, *api.Actions) {
	t.Helper()
	sets := map[string]*api.DefinedSet{}
	for _, ds := range req.DefinedSets {
		sets[ds.Name] = ds
	}
	exp := findPolicy(req, policyExport)
	holds := func(m *api.MatchSet, in bool) bool {
		if m == nil {
			return true
		}
		if m.Type == api.MatchSet_TYPE_INVERT {
			return !in
		}
		return in
	}
	for _, s := range exp.Statements {
		c := s.Conditions
		switch c.RouteType {
		case api.Conditions_ROUTE_TYPE_LOCAL:
			if !r.local {
				continue
			}
		case api.Conditions_ROUTE_TYPE_EXTERNAL:
			if r.local {
				continue
			}
		case api.Conditions_ROUTE_TYPE_UNSPECIFIED:
		default:
			t.Fatalf("statement %s: route type %v not modelled", s.Name, c.RouteType)
		}
		if c.NeighborSet != nil && !holds(c.NeighborSet, slices.Contains(sets[c.NeighborSet.Name].List, netip.PrefixFrom(r.to, r.to.BitLen()).String())) {
			continue
		}
		if c.PrefixSet != nil {
			isDefault := c.PrefixSet.Name == setDefaultV6 || c.PrefixSet.Name == setDefaultV4
			if !isDefault {
				continue // a site prefix: the routes here are not ours
			}
			if !holds(c.PrefixSet, r.default_) {
				continue
			}
		}
		if c.LargeCommunitySet != nil {
			large := slices.Clone(r.large)
			if r.notInside {
				large = append(large, notInsideCommunity(64500))
			}
			in := false
			for _, re := range sets[c.LargeCommunitySet.Name].List {
				for _, lc := range large {
					in = in || regexp.MustCompile(re).MatchString(lc)
				}
			}
			if !holds(c.LargeCommunitySet, in) {
				continue
			}
		}
		if c.CommunitySet != nil || c.AsPathSet != nil {
			t.Fatalf("statement %s: condition not modelled: %v", s.Name, c)
		}
		if s.Actions.RouteAction == api.RouteAction_ROUTE_ACTION_UNSPECIFIED {
			continue // modifies and goes on, as in GoBGP
		}
		return s.Name, s.Actions.RouteAction, s.Actions
	}
	return "default", api.RouteAction_ROUTE_ACTION_REJECT, nil
}

// TestInsidePolicies: with advertise: full the core gets learned routes
// with next hop self, never a learned default and never a route of an
// uplink that is not usable; the ISPs and edge peers get no learned route
// at all (no transit); the import of each full uplink sets its own
// LOCAL_PREF. Without advertise: full nothing changes.
func TestInsidePolicies(t *testing.T) {
	cfg := insideConfig(t, true)
	edge := config.IBGPPeer{Neighbor: netip.MustParseAddr("2001:db8:3000::2"), Role: config.RoleEdge, Interface: "eth2"}
	cfg.IBGP.Peers = append(cfg.IBGP.Peers, edge)
	in := policyInput{cfg: cfg, export: exportFor(cfg, BaseAnnouncements(cfg), 200), insideLP: map[string]uint32{"isp-a": 200, "isp-b": 0}}
	req := buildPolicies(in)

	core, ispA := netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.2")
	for _, tc := range []struct {
		name string
		r    exportRoute
		want api.RouteAction
	}{
		{"learned to core", exportRoute{to: core}, api.RouteAction_ROUTE_ACTION_ACCEPT},
		{"learned default to core", exportRoute{to: core, default_: true}, api.RouteAction_ROUTE_ACTION_REJECT},
		{"not-usable uplink's route to core", exportRoute{to: core, notInside: true}, api.RouteAction_ROUTE_ACTION_REJECT},
		{"our default to core", exportRoute{to: core, local: true, default_: true, large: []string{"64500:4:200"}}, api.RouteAction_ROUTE_ACTION_ACCEPT},
		{"our default to core without its mark", exportRoute{to: core, local: true, default_: true}, api.RouteAction_ROUTE_ACTION_REJECT},
		{"our default to core with another preference's mark", exportRoute{to: core, local: true, default_: true, large: []string{"64500:4:150"}}, api.RouteAction_ROUTE_ACTION_REJECT},
		{"learned to an ISP", exportRoute{to: ispA}, api.RouteAction_ROUTE_ACTION_REJECT},
		{"learned default to an ISP", exportRoute{to: ispA, default_: true}, api.RouteAction_ROUTE_ACTION_REJECT},
		{"learned to the other edge", exportRoute{to: edge.Neighbor}, api.RouteAction_ROUTE_ACTION_REJECT},
	} {
		name, got, act := firstMatch(t, req, tc.r)
		if got != tc.want {
			t.Errorf("%s: %v by %s; want %v", tc.name, got, name, tc.want)
		}
		if tc.name == "learned to core" && (act.Nexthop == nil || !act.Nexthop.Self) {
			t.Errorf("%s: next hop not self: %v", tc.name, act)
		}
	}
	// Every export statement about learned routes names the core peers,
	// and that set holds the core peer only.
	for _, s := range findPolicy(req, policyExport).Statements {
		if s.Conditions.RouteType != api.Conditions_ROUTE_TYPE_LOCAL && (s.Conditions.NeighborSet == nil || s.Conditions.NeighborSet.Name != setCore) {
			t.Errorf("export statement %s matches learned routes toward %v", s.Name, s.Conditions.NeighborSet)
		}
	}
	for _, ds := range req.DefinedSets {
		if ds.Name == setCore && !slices.Equal(ds.List, []string{"127.0.0.4/32"}) {
			t.Errorf("core set = %v; want only 127.0.0.4/32", ds.List)
		}
	}

	// Import: isp-a (up) carries 200, isp-b (not usable) the lowest
	// preference and the mark; isp-a's GRACEFUL_SHUTDOWN routes stay low
	// (RFC 8326) but above the mark's, so a marked path never ties with a
	// usable one.
	acts := importActions(req)
	mark := notInsideCommunity(cfg.Node.ASN)
	wantImp := map[string]string{
		"mh-import-isp-a-accept": "lp=200",
		"mh-import-isp-a-gshut":  "lp=2",
		"mh-import-isp-b-accept": "lp=1 mark=" + mark,
		"mh-import-isp-b-gshut":  "lp=1 mark=" + mark,
		// The ISPs' defaults never carry an inside preference: our own
		// originated default must stay the best path to ::/0.
		"mh-import-isp-a-default-v6": "",
		"mh-import-isp-b-default-v4": "",
	}
	for name, want := range wantImp {
		if got, ok := acts[name]; !ok || got != want {
			t.Errorf("import %s: %q (present %v); want %q", name, got, ok, want)
		}
	}
	// The order the tie-breakers rely on: marked < usable GRACEFUL_SHUTDOWN
	// < the lowest ladder value the config accepts with advertise: full.
	if !(notInsideLocalPf < insideGshutLocalPref && insideGshutLocalPref < config.MinInsideLocalPref) {
		t.Errorf("LOCAL_PREF marked %d, usable GRACEFUL_SHUTDOWN %d, lowest ladder value %d: want strictly rising", notInsideLocalPf, insideGshutLocalPref, config.MinInsideLocalPref)
	}

	// Without advertise: full: no learned route is exported, import sets no
	// preference beyond RFC 8326's.
	off := insideConfig(t, false)
	reqOff := buildPolicies(policyInput{cfg: off, export: exportFor(off, BaseAnnouncements(off), 200), insideLP: in.insideLP})
	if _, got, _ := firstMatch(t, reqOff, exportRoute{to: core}); got != api.RouteAction_ROUTE_ACTION_REJECT {
		t.Errorf("advertise default: a learned route to the core is %v; want REJECT", got)
	}
	if got := importActions(reqOff)["mh-import-isp-a-accept"]; got != "" {
		t.Errorf("advertise default: isp-a's accept sets %q; want nothing", got)
	}
	if !importChanged(off, cfg) {
		t.Error("importChanged(advertise default -> full) = false; a reload must re-run import")
	}
}

// importActions renders each import statement's LOCAL_PREF and large
// community actions.
func importActions(req *api.SetPoliciesRequest) map[string]string {
	out := map[string]string{}
	for _, s := range findPolicy(req, policyImport).Statements {
		var parts []string
		if s.Actions.LocalPref != nil {
			parts = append(parts, fmt.Sprintf("lp=%d", s.Actions.LocalPref.Value))
		}
		if s.Actions.LargeCommunity != nil {
			parts = append(parts, "mark="+strings.Join(s.Actions.LargeCommunity.Communities, ","))
		}
		out[s.Name] = strings.Join(parts, " ")
	}
	return out
}

// learnedPaths calls fn with the prefix and attributes of every path the
// test peer learned (not those it originates itself).
func learnedPaths(t *testing.T, p *testPeer, fn func(prefix string, attrs []bgp.PathAttributeInterface)) {
	t.Helper()
	must(t, p.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC}, func(prefix bgp.NLRI, paths []*apiutil.Path) {
		for _, path := range paths {
			if path.PeerAddress.IsValid() && !path.PeerAddress.IsUnspecified() {
				fn(prefix.String(), path.Attrs)
			}
		}
	}))
}

// coreView returns what the core test peer holds: prefix -> "lp=N nh=A".
func coreView(t *testing.T, p *testPeer) map[string]string {
	t.Helper()
	out := map[string]string{}
	learnedPaths(t, p, func(prefix string, attrs []bgp.PathAttributeInterface) {
		var parts []string
		for _, a := range attrs {
			switch a := a.(type) {
			case *bgp.PathAttributeLocalPref:
				parts = append(parts, fmt.Sprintf("lp=%d", a.Value))
			case *bgp.PathAttributeNextHop:
				parts = append(parts, "nh="+a.Value.String())
			}
		}
		sort.Strings(parts)
		out[prefix] = strings.Join(parts, " ")
	})
	return out
}

// TestInsideAdvertisement: two ISPs send full tables (a shared prefix, one
// of ISP-A's own and a default each), a core router peers over iBGP. The
// core gets each destination once, from its best healthy uplink, with that
// uplink's LOCAL_PREF and us as next hop; a degraded ISP-A demotes its own
// prefix and moves the shared one to ISP-B; a down ISP-A withdraws its own
// prefix from the core; ISP-A back up restores it. Neither ISP ever hears
// the other's routes.
func TestInsideAdvertisement(t *testing.T) {
	port := freePort(t)
	peerA := startTestPeer(t, "127.0.0.2", port, 64501, []string{"0.0.0.0/0", "203.0.113.0/24", "192.0.2.0/24"})
	peerB := startTestPeer(t, "127.0.0.3", port, 64502, []string{"0.0.0.0/0", "203.0.113.0/24 64510"})
	core := startTestPeer(t, "127.0.0.4", port, 64500, nil)

	cfg := insideConfig(t, true)
	sp := startSpeaker(t, port, cfg)
	ctx := context.Background()
	up := map[string]uint32{"isp-a": 200, "isp-b": 200}
	must(t, sp.SetInsideLocalPrefs(ctx, up))
	_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
	must(t, err)
	must(t, sp.SetInternalDefault(ctx, 200))

	expect := func(what string, want map[string]string) {
		t.Helper()
		eventually(t, what, 20*time.Second, func() (bool, string) {
			got := coreView(t, core)
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("core holds %v; want %v", got, want)
		})
	}
	// 203.0.113.0/24: ISP-A's path is shorter (ISP-B's has 64510 behind
	// it), so ISP-A's is best while both are up.
	expect("both up: every route at 200 via us, our own default", map[string]string{
		"0.0.0.0/0": "lp=200 nh=127.0.0.1", "192.0.2.0/24": "lp=200 nh=127.0.0.1", "203.0.113.0/24": "lp=200 nh=127.0.0.1",
	})
	// The core's view does not show which uplink the shared prefix uses
	// (200 either way), and GoBGP applies a preference change route by
	// route: wait for the best path itself.
	sharedBest := func(when, want string) {
		t.Helper()
		eventually(t, when+": best path to 203.0.113.0/24 from "+want, 20*time.Second, func() (bool, string) {
			sh := sharedBestUplink(t, sp)
			return sh == want, "from " + sh
		})
	}
	sharedBest("both up", "127.0.0.2")

	must(t, sp.SetInsideLocalPrefs(ctx, map[string]uint32{"isp-a": 100, "isp-b": 200}))
	expect("A degraded: A's own prefix demoted", map[string]string{
		"0.0.0.0/0": "lp=200 nh=127.0.0.1", "192.0.2.0/24": "lp=100 nh=127.0.0.1", "203.0.113.0/24": "lp=200 nh=127.0.0.1",
	})
	sharedBest("A degraded", "127.0.0.3")

	must(t, sp.SetInsideLocalPrefs(ctx, map[string]uint32{"isp-b": 200}))
	expect("A down: A's own prefix withdrawn, the shared one via B", map[string]string{
		"0.0.0.0/0": "lp=200 nh=127.0.0.1", "203.0.113.0/24": "lp=200 nh=127.0.0.1",
	})
	sharedBest("A down", "127.0.0.3")

	must(t, sp.SetInsideLocalPrefs(ctx, up))
	expect("A back up", map[string]string{
		"0.0.0.0/0": "lp=200 nh=127.0.0.1", "192.0.2.0/24": "lp=200 nh=127.0.0.1", "203.0.113.0/24": "lp=200 nh=127.0.0.1",
	})
	// No transit: each ISP holds only the site prefix.
	for name, p := range map[string]*testPeer{"ISP-A": peerA, "ISP-B": peerB} {
		got := p.received(t)
		if _, ok := got["198.51.100.0/24"]; len(got) != 1 || !ok {
			t.Errorf("%s received %v; want only the site prefix", name, got)
		}
	}
}

// sharedBestUplink returns the neighbor whose path to 203.0.113.0/24 is
// the speaker's best.
func sharedBestUplink(t *testing.T, sp *Speaker) string {
	t.Helper()
	best := ""
	must(t, sp.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC, Prefixes: []*apiutil.LookupPrefix{{Prefix: "203.0.113.0/24"}}}, func(_ bgp.NLRI, paths []*apiutil.Path) {
		for _, p := range paths {
			if p.Best {
				best = p.PeerAddress.String()
			}
		}
	}))
	return best
}

// TestInsideReload: a reload turns ibgp.advertise: full on (the core hears
// no learned route during the reload, and gets them once the preferences
// are set) and off again (the core keeps only our default), twice, the
// second time after the preferences changed while off, without resetting a
// session.
func TestInsideReload(t *testing.T) {
	port := freePort(t)
	startTestPeer(t, "127.0.0.2", port, 64501, []string{"192.0.2.0/24"})
	startTestPeer(t, "127.0.0.3", port, 64502, []string{"203.0.113.0/24"})
	core := startTestPeer(t, "127.0.0.4", port, 64500, nil)
	sp := New(Options{PeerPort: uint32(port)})
	ctx := context.Background()
	off, on := insideConfig(t, false), insideConfig(t, true)
	must(t, sp.Start(ctx, off))
	defer sp.Stop(ctx)
	_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(off))
	must(t, err)
	must(t, sp.SetInternalDefault(ctx, 200))
	up := map[string]uint32{"isp-a": 200, "isp-b": 200}
	must(t, sp.SetInsideLocalPrefs(ctx, up)) // a no-op while off
	expect := func(what string, want map[string]string) {
		t.Helper()
		eventually(t, what, 20*time.Second, func() (bool, string) {
			got := coreView(t, core)
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("core holds %v; want %v", got, want)
		})
	}
	onlyDefault := map[string]string{"0.0.0.0/0": "lp=200 nh=127.0.0.1"}
	eventually(t, "all sessions established", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		for _, s := range ss {
			if !s.Established() {
				return false, fmt.Sprint(ss)
			}
		}
		return len(ss) == 3, fmt.Sprint(ss)
	})
	expect("advertise default: only our default", onlyDefault)
	since := map[string]time.Time{}
	for _, s := range sp.Sessions() {
		since[s.Neighbor.String()] = s.Since
	}

	// turnOn reloads with advertise: full while recording every update the
	// core receives (a poll of its table misses a route sent and withdrawn
	// a moment later): until the controller's first preferences the core
	// must hear no learned route, the re-import marking them all before any
	// reaches the export. The barrier: our default moves to LOCAL_PREF 150
	// after the reload; the session is one ordered stream, so once the core
	// holds that, it has received everything the reload sent.
	var heard arrivals
	heard.watch(t, core)
	turnOn := func(what string) {
		t.Helper()
		from := len(heard.list())
		must(t, sp.Reconfigure(ctx, on))
		must(t, sp.SetInternalDefault(ctx, 150))
		eventually(t, what+": barrier", 20*time.Second, func() (bool, string) {
			v := coreView(t, core)
			return v["0.0.0.0/0"] == "lp=150 nh=127.0.0.1", fmt.Sprint(v)
		})
		var bad []string
		for _, got := range heard.list()[from:] {
			if got != "0.0.0.0/0" && !strings.HasPrefix(got, "withdraw ") {
				bad = append(bad, got)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%s: before any preference the core heard %v", what, bad)
		}
		must(t, sp.SetInternalDefault(ctx, 200))
	}
	full := map[string]string{
		"0.0.0.0/0": "lp=200 nh=127.0.0.1", "192.0.2.0/24": "lp=200 nh=127.0.0.1", "203.0.113.0/24": "lp=200 nh=127.0.0.1",
	}

	turnOn("first reload to advertise: full")
	must(t, sp.SetInsideLocalPrefs(ctx, up))
	expect("reloaded with advertise: full", full)
	must(t, sp.Reconfigure(ctx, off))
	expect("reloaded back to advertise: default", onlyDefault)
	// While off the preferences change (ISP-A down); turning on again
	// must not re-import with the stale ones from before.
	must(t, sp.SetInsideLocalPrefs(ctx, map[string]uint32{"isp-b": 200}))
	turnOn("second reload to advertise: full")
	must(t, sp.SetInsideLocalPrefs(ctx, up))
	expect("reloaded with advertise: full again", full)
	must(t, sp.Reconfigure(ctx, off))
	expect("reloaded back to advertise: default again", onlyDefault)
	for _, s := range sp.Sessions() {
		if !s.Since.Equal(since[s.Neighbor.String()]) {
			t.Errorf("session %s changed state during the reloads (since %s, was %s)", s.Neighbor, s.Since, since[s.Neighbor.String()])
		}
	}
}

package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/internal/testenv"
	"github.com/multihomed/multihomed/routing"
)

func TestSiteStateCodec(t *testing.T) {
	rid := netip.MustParseAddr("198.51.100.7")
	for _, st := range []routing.UplinkState{
		{Uplink: "a", State: "up"},
		{Uplink: "isp-a", State: "degraded"},
		{Uplink: "abcd", State: "down"},
		{Uplink: "abcde", State: "drained"},
		{Uplink: strings.Repeat("x", 31), State: "forced-down"},
		{Uplink: "isp-b", State: "unknown"},
	} {
		p := stateRoutePrefix(rid, 3)
		edge, got, err := decodeUplinkState(64500, p, encodeUplinkState(64500, st))
		if err != nil || edge != rid || got != st {
			t.Errorf("%+v: decoded %s %+v, %v", st, edge, got, err)
		}
	}
	if got := stateRoutePrefix(rid, 258).String(); got != "fd6d:6801:c633:6407::102/128" {
		t.Errorf("prefix = %s", got)
	}
	// Another ASN's communities are ignored; a state code this version
	// does not know, or two codes, mean unknown (never usable).
	lcs := append(encodeUplinkState(64511, routing.UplinkState{Uplink: "zzzz", State: "degraded"}), encodeUplinkState(64500, routing.UplinkState{Uplink: "isp-c", State: "up"})...)
	if _, got, err := decodeUplinkState(64500, stateRoutePrefix(rid, 0), lcs); err != nil || got != (routing.UplinkState{Uplink: "isp-c", State: "up"}) {
		t.Errorf("other ASN's communities: %+v, %v", got, err)
	}
	for _, extra := range []uint32{99, 2} {
		bad := append(slices.Clone(lcs), routing.LargeCommunity{Global: 64500, Local1: lcState, Local2: extra})
		if _, got, err := decodeUplinkState(64500, stateRoutePrefix(rid, 0), bad); err != nil || got != (routing.UplinkState{Uplink: "isp-c", State: "unknown"}) {
			t.Errorf("extra state code %d: %+v, %v", extra, got, err)
		}
	}
	for _, bad := range []string{"fd6d:6802::1/128", "fd6d:6801::/64", "2001:db8::1/128"} {
		if _, _, err := decodeUplinkState(64500, netip.MustParsePrefix(bad), encodeUplinkState(64500, routing.UplinkState{Uplink: "a", State: "up"})); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
	if _, _, err := decodeUplinkState(64500, stateRoutePrefix(rid, 0), nil); err == nil {
		t.Error("a route without a name decoded")
	}
}

// FuzzDecodeUplinkState: whatever another edge sends, decoding does not
// panic, and what decodes re-encodes to the same state.
func FuzzDecodeUplinkState(f *testing.F) {
	f.Add([]byte{0xfd, 0x6d, 0x68, 0x01, 198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 0, 1}, uint32(1), uint32(1), uint32(256), uint32(0x69737061))
	f.Fuzz(func(t *testing.T, addr []byte, l1a, l2a, l1b, l2b uint32) {
		if len(addr) != 16 {
			return
		}
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte(addr)), 128)
		lcs := []routing.LargeCommunity{{Global: 64500, Local1: l1a, Local2: l2a}, {Global: 64500, Local1: l1b, Local2: l2b}}
		_, st, err := decodeUplinkState(64500, p, lcs)
		if err != nil {
			return
		}
		if strings.ContainsRune(st.Uplink, 0) {
			return // a name with a zero byte inside is cut there on the wire
		}
		_, again, err := decodeUplinkState(64500, p, encodeUplinkState(64500, st))
		if err != nil || again != st {
			t.Fatalf("%+v re-encoded to %+v, %v", st, again, err)
		}
	})
}

// edgeSpeakerConfig is an edge whose only internal peer is another edge
// at ::1 (every speaker of the test listens on its own port there).
func edgeSpeakerConfig(t *testing.T, routerID string, listen int32) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test", []byte(fmt.Sprintf(`
profile: lab
node: {router_id: %s, asn: 64500}
site: {prefixes: [198.51.100.0/24]}
bgp: {graceful_restart: false, listen_port: %d}
ibgp:
  peers:
    - {neighbor: "::1", local_address: "::1", role: edge, interface: lo, hold_time: 9s, connect_retry: 1s}
uplinks:
  - name: isp-a
    interface: lo
    bgp: {peer_asn: 64501, neighbor: 127.0.0.9, hold_time: 9s, connect_retry: 1s}
`, routerID, listen)), nil)
	must(t, err)
	return cfg
}

// TestTwoEdgesExchangeSiteState: two speakers as edges of one site. Each
// learns the other's uplink states and default; a change is seen; when
// the other edge stops, what it said is gone.
func TestTwoEdgesExchangeSiteState(t *testing.T) {
	needIPv6Loopback(t)
	ctx := context.Background()
	portA, portB := freePort(t), freePort(t)
	a := New(Options{PeerPort: uint32(portB)})
	must(t, a.Start(ctx, edgeSpeakerConfig(t, "198.51.100.1", portA)))
	defer a.Stop(ctx)
	b := New(Options{PeerPort: uint32(portA)})
	must(t, b.Start(ctx, edgeSpeakerConfig(t, "198.51.100.2", portB)))
	stopB := func() { b.Stop(ctx) }
	defer func() { stopB() }()

	must(t, a.SetSiteState(ctx, []routing.UplinkState{{Uplink: "isp-a", State: "up"}}))
	must(t, a.SetInternalDefault(ctx, 200))
	must(t, b.SetSiteState(ctx, []routing.UplinkState{{Uplink: "isp-b", State: "degraded"}}))

	view := func(sp *Speaker) string {
		v, err := sp.SiteView()
		if err != nil {
			return err.Error()
		}
		var parts []string
		for _, u := range v.Uplinks {
			parts = append(parts, fmt.Sprintf("%s/%s=%s", u.Edge, u.Uplink, u.State))
		}
		for _, d := range v.Defaults {
			parts = append(parts, fmt.Sprintf("default %s via %s", d.Dst, d.NextHop))
		}
		return strings.Join(parts, "; ")
	}
	eventually(t, "each edge sees the other's uplink, B sees A's default", 20*time.Second, func() (bool, string) {
		va, vb := view(a), view(b)
		return va == "198.51.100.2/isp-b=degraded" && vb == "198.51.100.1/isp-a=up; default ::/0 via ::1", "A: " + va + " | B: " + vb
	})
	// The learned default loses to B's own (B does not send one yet; once
	// it does, the core must still get it: B's own path stays best).
	must(t, b.SetInternalDefault(ctx, 200))
	eventually(t, "A's default at LOCAL_PREF 1 at B, B's own best", 10*time.Second, func() (bool, string) {
		lp, best := learnedDefault(t, b)
		return lp == edgeDefaultLocalPref && !best, fmt.Sprintf("lp=%d best=%v", lp, best)
	})
	// Not the best path, still in the view (failover egress keeps it
	// installed behind B's own uplinks).
	if vb := view(b); vb != "198.51.100.1/isp-a=up; default ::/0 via ::1" {
		t.Errorf("B's view with its own default best: %s", vb)
	}

	// Sessions are up and quiet: a change of A's state alone must wake
	// B's controller (Changed), not wait for its resync.
	select {
	case <-b.Changed():
	default:
	}
	// And the view read on that signal already holds the change (at least
	// the first of its UPDATEs): the signal comes from GoBGP's pre-policy
	// event, and SiteView's read waits for GoBGP to finish the UPDATE.
	before := view(b)
	must(t, a.SetSiteState(ctx, []routing.UplinkState{{Uplink: "isp-a", State: "down"}, {Uplink: "isp-c", State: "up"}}))
	select {
	case <-b.Changed():
		if now := view(b); now == before {
			t.Errorf("B's view on the Changed signal is still the old one: %s", now)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B's Changed was not signalled for A's new site state")
	}
	must(t, a.SetInternalDefault(ctx, 0))
	eventually(t, "B sees A's change and A's default withdrawn", 10*time.Second, func() (bool, string) {
		vb := view(b)
		return vb == "198.51.100.1/isp-a=down; 198.51.100.1/isp-c=up", vb
	})
	// Idempotent: the same states again send nothing new (the paths keep
	// their age).
	v1, _ := b.SiteView()
	must(t, a.SetSiteState(ctx, []routing.UplinkState{{Uplink: "isp-a", State: "down"}, {Uplink: "isp-c", State: "up"}}))
	v2, _ := b.SiteView()
	if d := cmp.Diff(v1, v2, cmp.Comparer(func(x, y netip.Addr) bool { return x == y }), cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); d != "" {
		t.Errorf("view changed after the same states (-before +after):\n%s", d)
	}
	must(t, a.SetSiteState(ctx, []routing.UplinkState{{Uplink: "isp-a", State: "down"}}))
	eventually(t, "B sees isp-c withdrawn", 10*time.Second, func() (bool, string) {
		vb := view(b)
		return vb == "198.51.100.1/isp-a=down", vb
	})

	stopB()
	stopB = func() {}
	eventually(t, "A forgets B's state with the session", 20*time.Second, func() (bool, string) {
		va := view(a)
		return va == "", va
	})
}

// learnedDefault returns the LOCAL_PREF of the ::/0 sp learned from a peer
// and whether it is the best path.
func learnedDefault(t *testing.T, sp *Speaker) (uint32, bool) {
	t.Helper()
	var lp uint32
	var best bool
	must(t, sp.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv6_UC, Prefixes: []*apiutil.LookupPrefix{{Prefix: "::/0"}}}, func(_ bgp.NLRI, paths []*apiutil.Path) {
		for _, p := range paths {
			if !p.PeerAddress.IsValid() || p.PeerAddress.IsUnspecified() {
				continue
			}
			best = p.Best
			for _, a := range p.Attrs {
				if l, ok := a.(*bgp.PathAttributeLocalPref); ok {
					lp = l.Value
				}
			}
		}
	}))
	return lp, best
}

// TestEdgePeerFiltered: another "edge" that sends more than defaults and
// state routes has the rest filtered, and one that sends more routes than
// an edge ever has is cut off by max-prefix.
func TestEdgePeerFiltered(t *testing.T) {
	needIPv6Loopback(t)
	ctx := context.Background()
	rogue := server.NewBgpServer(server.LoggerOption(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), &slog.LevelVar{}))
	done := make(chan struct{})
	go func() { defer close(done); rogue.Serve() }()
	t.Cleanup(func() { rogue.Stop(); <-done })
	port := freePort(t)
	must(t, rogue.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 64500, RouterId: "198.51.100.9", ListenPort: port, ListenAddresses: []string{"::1"}}}))
	must(t, rogue.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "::1", PeerAsn: 64500},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: "::1"},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: familyV6, Enabled: true}}},
	}}))
	send := func(p netip.Prefix, lcs []routing.LargeCommunity) {
		t.Helper()
		nlri, _ := bgp.NewIPAddrPrefix(p)
		mp, _ := bgp.NewPathAttributeMpReachNLRI(bgp.RF_IPv6_UC, []bgp.PathNLRI{{NLRI: nlri}}, netip.MustParseAddr("::1"))
		attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), mp}
		if len(lcs) > 0 {
			var vals []*bgp.LargeCommunity
			for _, c := range lcs {
				vals = append(vals, bgp.NewLargeCommunity(c.Global, c.Local1, c.Local2))
			}
			attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(vals))
		}
		_, err := rogue.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: bgp.RF_IPv6_UC, Nlri: nlri, Attrs: attrs}}})
		must(t, err)
	}
	rid := netip.MustParseAddr("198.51.100.9")
	send(netip.MustParsePrefix("::/0"), nil)
	send(stateRoutePrefix(rid, 0), encodeUplinkState(64500, routing.UplinkState{Uplink: "isp-z", State: "up"}))
	send(netip.MustParsePrefix("2001:db8:face::/48"), nil)   // our own site prefix
	send(netip.MustParsePrefix("2001:db8:face:1::/64"), nil) // inside it
	send(netip.MustParsePrefix("2001:db8:77::/48"), nil)     // anything else
	send(netip.MustParsePrefix("fd6d:6801::/64"), nil)       // the state range, not a /128
	send(netip.MustParsePrefix("fd6d:6802::1/128"), nil)     // another version's range

	sp := New(Options{PeerPort: uint32(port)})
	must(t, sp.Start(ctx, edgeSpeakerConfig(t, "198.51.100.1", freePort(t))))
	defer sp.Stop(ctx)
	eventually(t, "only the default and the state route accepted", 20*time.Second, func() (bool, string) {
		v, err := sp.SiteView()
		if err != nil {
			return false, err.Error()
		}
		learned, _ := sp.Learned()
		got := fmt.Sprintf("uplinks=%d %v defaults=%d learned=%v", len(v.Uplinks), v.Uplinks, len(v.Defaults), learned)
		ok := len(v.Uplinks) == 1 && v.Uplinks[0].Uplink == "isp-z" && v.Uplinks[0].Edge == rid && len(v.Defaults) == 1 &&
			fmt.Sprint(learned) == "map[:[::/0 fd6d:6801:c633:6409::/128]]"
		return ok, got
	})
	// The counts: seven routes received, the two GoBGP's RIB holds accepted
	// (importFilter's edge rules).
	eventually(t, "edge session counted", 10*time.Second, func() (bool, string) {
		for _, s := range sp.Sessions() {
			if s.Internal {
				return s.Received == 7 && s.Accepted == 2, fmt.Sprint(s)
			}
		}
		return false, "no internal session"
	})
	established := func() bool {
		ss := sp.Sessions()
		for _, s := range ss {
			if s.Internal {
				return s.Established()
			}
		}
		return false
	}
	if !established() {
		t.Fatal("edge session not established after the routes arrived")
	}
	// An edge sends at most one default and one state route per uplink
	// per family: beyond that the session is closed.
	for i := range config.MaxUplinks + 1 {
		send(stateRoutePrefix(rid, i+1), encodeUplinkState(64500, routing.UplinkState{Uplink: fmt.Sprintf("x%d", i), State: "up"}))
	}
	eventually(t, "max-prefix closes the session", 20*time.Second, func() (bool, string) {
		var st routing.SessionState
		for _, s := range sp.Sessions() {
			if s.Internal {
				st = s
			}
		}
		return !st.Established() && st.LastError != "", fmt.Sprintf("%+v", st)
	})
}

// needIPv6Loopback skips t outside CI (fails it in CI) without ::1: the
// edges exchange their state over IPv6 sessions.
func needIPv6Loopback(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err == nil {
		l.Close()
		return
	}
	if testenv.InCI() {
		t.Fatalf("CI must run this test but ::1 is unusable: %v", err)
	}
	t.Skipf("skipped outside CI: ::1 is unusable: %v", err)
}

func TestIBGPPassive(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8:face:13::1"), netip.MustParseAddr("2001:db8:face:13::2")
	for _, tc := range []struct {
		p    config.IBGPPeer
		want bool
	}{
		{config.IBGPPeer{Role: config.RoleEdge, LocalAddress: b, Neighbor: a}, true},
		{config.IBGPPeer{Role: config.RoleEdge, LocalAddress: a, Neighbor: b}, false},
		{config.IBGPPeer{Role: config.RoleEdge, Neighbor: a}, false},
		{config.IBGPPeer{Role: config.RoleCore, LocalAddress: b, Neighbor: a}, false},
	} {
		if got := ibgpPassive(tc.p); got != tc.want {
			t.Errorf("%+v: passive %v, want %v", tc.p, got, tc.want)
		}
	}
}

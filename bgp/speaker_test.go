package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"go.uber.org/goleak"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/internal/testenv"
)

// gobgpAsyncTeardown names the one goroutine GoBGP v4.8.0 may still be
// closing after Stop returns: the buffer behind a watcher or FSM channel is
// drained by a cleanup that runs asynchronously to Stop. It holds no socket
// and ends on its own; everything else must be gone.
var gobgpAsyncTeardown = goleak.IgnoreTopFunction("github.com/eapache/channels.(*InfiniteChannel).infiniteBuffer")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, gobgpAsyncTeardown)
}

// testPeer is a second GoBGP instance standing in for an ISP router on
// loopback.
type testPeer struct {
	srv  *server.BgpServer
	done chan struct{}
}

// peerOption changes how a test peer configures its session with us.
type peerOption func(*api.Peer)

// withGracefulRestart makes the test peer a graceful-restart helper
// (RFC 4724), with the RFC 8538 N bit if notification.
func withGracefulRestart(notification bool) peerOption {
	return func(p *api.Peer) {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, HelperOnly: true, RestartTime: 60, NotificationEnabled: notification}
		p.AfiSafis = []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: familyV4, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		}}
	}
}

// withNeighbor makes the test peer expect us at local instead of 127.0.0.1.
func withNeighbor(local string) peerOption {
	return func(p *api.Peer) { p.Conf.NeighborAddress = local }
}

func startTestPeer(t testing.TB, addr string, port int32, asn uint32, routes []string, opts ...peerOption) *testPeer {
	t.Helper()
	ctx := context.Background()
	p := &testPeer{srv: server.NewBgpServer(server.LoggerOption(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), &slog.LevelVar{})), done: make(chan struct{})}
	go func() { defer close(p.done); p.srv.Serve() }()
	t.Cleanup(func() {
		p.srv.Stop()
		<-p.done
	})
	must(t, p.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: asn, RouterId: addr, ListenPort: port, ListenAddresses: []string{addr}}}))
	peer := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 64500},
		Transport: &api.Transport{PassiveMode: true, LocalAddress: addr},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 9, KeepaliveInterval: 3}},
	}
	for _, o := range opts {
		o(peer)
	}
	must(t, p.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}))
	for _, r := range routes {
		// "prefix asn..." originates the prefix with that AS path behind
		// the peer's own ASN.
		f := strings.Fields(r)
		pfx := netip.MustParsePrefix(f[0])
		nlri, _ := bgp.NewIPAddrPrefix(pfx)
		nh, _ := bgp.NewPathAttributeNextHop(netip.MustParseAddr(addr))
		attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nh}
		if len(f) > 1 {
			var asns []uint32
			for _, a := range f[1:] {
				var n uint32
				fmt.Sscan(a, &n)
				asns = append(asns, n)
			}
			attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, asns)}))
		}
		_, err := p.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: bgp.RF_IPv4_UC, Nlri: nlri, Attrs: attrs}}})
		must(t, err)
	}
	return p
}

// received returns the peer's view of what we sent: prefix -> attributes.
func (p *testPeer) received(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := p.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC}, func(prefix bgp.NLRI, paths []*apiutil.Path) {
		for _, path := range paths {
			if !path.PeerAddress.IsValid() || path.PeerAddress.IsUnspecified() {
				continue // locally originated by the test peer
			}
			out[prefix.String()] = describeAttrs(path)
		}
	})
	must(t, err)
	return out
}

// describeAttrs writes a received path's AS path, communities, MED and
// large communities (and whether it is stale), sorted.
func describeAttrs(path *apiutil.Path) string {
	var attrs []string
	for _, a := range path.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeAsPath:
			var segs []string
			for _, v := range a.Value {
				segs = append(segs, v.String())
			}
			attrs = append(attrs, "aspath="+strings.Join(segs, " "))
		case *bgp.PathAttributeCommunities:
			var cs []string
			for _, v := range a.Value {
				cs = append(cs, routing.Community(v).String())
			}
			attrs = append(attrs, "comm="+strings.Join(cs, ","))
		case *bgp.PathAttributeMultiExitDisc:
			attrs = append(attrs, fmt.Sprintf("med=%d", a.Value))
		case *bgp.PathAttributeLargeCommunities:
			var ls []string
			for _, v := range a.Values {
				ls = append(ls, fmt.Sprintf("%d:%d:%d", v.ASN, v.LocalData1, v.LocalData2))
			}
			attrs = append(attrs, "large="+strings.Join(ls, ","))
		}
	}
	if path.Stale {
		attrs = append(attrs, "stale")
	}
	sort.Strings(attrs)
	return strings.Join(attrs, " ")
}

// receivedPrefix is received for the one prefix p, looked up without a
// walk of the peer's table: p's attributes, and whether the peer has a
// path for it from us.
func (p *testPeer) receivedPrefix(t *testing.T, pfx netip.Prefix) (string, bool) {
	t.Helper()
	fam := bgp.RF_IPv4_UC
	if pfx.Addr().Is6() {
		fam = bgp.RF_IPv6_UC
	}
	var attrs string
	found := false
	must(t, p.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam,
		Prefixes: []*apiutil.LookupPrefix{{Prefix: pfx.String(), LookupOption: apiutil.LOOKUP_EXACT}}}, func(_ bgp.NLRI, paths []*apiutil.Path) {
		for _, path := range paths {
			if path.PeerAddress.IsValid() && !path.PeerAddress.IsUnspecified() {
				attrs, found = describeAttrs(path), true
			}
		}
	}))
	return attrs, found
}

// updatesReceived is how many UPDATE messages the test peer received.
func (p *testPeer) updatesReceived(t *testing.T) uint64 {
	t.Helper()
	var n uint64
	must(t, p.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(peer *api.Peer) {
		n += peer.GetState().GetMessages().GetReceived().GetUpdate()
	}))
	return n
}

// established reports whether the test peer's session with us is up.
func (p *testPeer) established(t *testing.T) bool {
	t.Helper()
	up := false
	must(t, p.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(peer *api.Peer) {
		up = peer.State.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED
	}))
	return up
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var eventually = testenv.Eventually

func freePort(t testing.TB) int32 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// startSpeaker starts a Speaker on cfg whose peers listen on port and
// stops it when t ends.
func startSpeaker(t *testing.T, port int32, cfg *config.Config) *Speaker {
	t.Helper()
	sp := New(Options{PeerPort: uint32(port)})
	must(t, sp.Start(context.Background(), cfg))
	t.Cleanup(func() { sp.Stop(context.Background()) })
	return sp
}

func loopbackConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test", []byte(`
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: [198.51.100.0/24]}
bgp: {graceful_restart: false}
uplinks:
  - name: isp-a
    interface: lo
    bgp: {peer_asn: 64501, neighbor: 127.0.0.2, local_address: 127.0.0.1, hold_time: 9s, connect_retry: 1s, communities: ["64501:100"], med: 7}
  - name: isp-b
    interface: lo
    bgp: {peer_asn: 64502, neighbor: 127.0.0.3, local_address: 127.0.0.1, hold_time: 9s, connect_retry: 1s, prepend: 2, large_communities: ["64500:1:2"]}
`), nil)
	must(t, err)
	return cfg
}

// TestSpeakerLoopback: two ISPs get the site prefix with their own
// attributes, import default keeps only the default, and announcement
// changes reach each ISP, both ways the speaker applies them
// (exportmarks.go): in place, where a change for one ISP sends the other
// nothing, and by re-origination, where nothing is soft-reset.
func TestSpeakerLoopback(t *testing.T) {
	for _, mode := range []struct {
		name       string
		inPlaceMax uint64
	}{{"in place", math.MaxUint64}, {"re-originated", 0}} {
		t.Run(mode.name, func(t *testing.T) { speakerLoopback(t, mode.inPlaceMax) })
	}
}

func speakerLoopback(t *testing.T, inPlaceMax uint64) {
	port := freePort(t)
	// ISP-A sends a default, a foreign prefix and a more-specific of our
	// own prefix; ISP-B sends a foreign prefix.
	peerA := startTestPeer(t, "127.0.0.2", port, 64501, []string{"0.0.0.0/0", "203.0.113.0/24", "198.51.100.128/25"})
	peerB := startTestPeer(t, "127.0.0.3", port, 64502, []string{"192.0.2.0/24"})

	cfg := loopbackConfig(t)
	sp := startSpeaker(t, port, cfg)
	sp.inPlaceMax = inPlaceMax
	ctx := context.Background()

	got, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
	must(t, err)
	if len(got["isp-a"]) != 1 || len(got["isp-b"]) != 1 {
		t.Fatalf("reached %v; want one prefix per uplink", got)
	}
	eventually(t, "both sessions established", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return len(ss) == 2 && ss[0].Established() && ss[1].Established(), fmt.Sprint(ss)
	})
	wantA := map[string]string{"198.51.100.0/24": "aspath=64500 comm=64501:100 med=7"}
	wantB := map[string]string{"198.51.100.0/24": "aspath=64500 64500 64500 large=64500:1:2"}
	eventually(t, "each ISP holds exactly the site prefix with its attributes", 10*time.Second, func() (bool, string) {
		a, b := peerA.received(t), peerB.received(t)
		return fmt.Sprint(a) == fmt.Sprint(wantA) && fmt.Sprint(b) == fmt.Sprint(wantB), fmt.Sprintf("A=%v B=%v", a, b)
	})

	// Import default: only ISP-A's default route reached our RIB.
	var learned []string
	must(t, sp.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC}, func(prefix bgp.NLRI, paths []*apiutil.Path) {
		for _, p := range paths {
			if p.PeerAddress.IsValid() && !p.PeerAddress.IsUnspecified() {
				learned = append(learned, prefix.String())
			}
		}
	}))
	if !slices.Equal(learned, []string{"0.0.0.0/0"}) {
		t.Errorf("learned %v; want only 0.0.0.0/0", learned)
	}

	// Idempotent: the same announcements again change nothing.
	before := sp.Announced()
	got2, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
	must(t, err)
	if fmt.Sprint(got2) != fmt.Sprint(before) {
		t.Fatalf("second SetAnnouncements reached %v; want %v", got2, before)
	}

	// A change for ISP-A alone, then one for ISP-B alone. In place, B
	// hears only its own change and A's sessions are soft-reset;
	// re-originated, B also hears A's change (an UPDATE identical to the
	// last) and nothing is reset.
	updatesB, resets := peerB.updatesReceived(t), softResetsOut(sp)
	anns := BaseAnnouncements(cfg)
	anns["isp-a"][0].Prepend = 1
	_, err = sp.SetAnnouncements(ctx, anns)
	must(t, err)
	eventually(t, "A holds the prepend", 10*time.Second, func() (bool, string) {
		a := peerA.received(t)
		return a["198.51.100.0/24"] == "aspath=64500 64500 comm=64501:100 med=7", fmt.Sprint(a)
	})
	anns["isp-b"][0].Prepend = 3
	_, err = sp.SetAnnouncements(ctx, anns)
	must(t, err)
	eventually(t, "B holds its new prepend", 10*time.Second, func() (bool, string) {
		b := peerB.received(t)
		return b["198.51.100.0/24"] == "aspath=64500 64500 64500 64500 large=64500:1:2", fmt.Sprint(b)
	})
	gotUpdates, gotResets := peerB.updatesReceived(t)-updatesB, softResetsOut(sp)-resets
	if inPlaceMax > 0 && (gotUpdates != 1 || gotResets != 2) {
		t.Errorf("in place: B received %d UPDATEs and %d sessions were soft-reset; want 1 and 2 (A's, then B's)", gotUpdates, gotResets)
	}
	if inPlaceMax == 0 && (gotUpdates != 2 || gotResets != 0) {
		t.Errorf("re-originated: B received %d UPDATEs and %d sessions were soft-reset; want 2 and none", gotUpdates, gotResets)
	}

	// Withdraw from ISP-A only, drain-style community on ISP-B.
	anns = BaseAnnouncements(cfg)
	delete(anns, "isp-a")
	anns["isp-b"][0].GracefulShutdown = true
	_, err = sp.SetAnnouncements(ctx, anns)
	must(t, err)
	wantB = map[string]string{"198.51.100.0/24": "aspath=64500 64500 64500 comm=65535:0 large=64500:1:2"}
	eventually(t, "withdrawn from A, graceful shutdown on B", 10*time.Second, func() (bool, string) {
		a, b := peerA.received(t), peerB.received(t)
		return len(a) == 0 && fmt.Sprint(b) == fmt.Sprint(wantB), fmt.Sprintf("A=%v B=%v", a, b)
	})

	// A prefix outside the site is refused and named.
	_, err = sp.SetAnnouncements(ctx, map[string][]routing.Announcement{"isp-a": {{Prefix: netip.MustParsePrefix("203.0.113.0/24")}}})
	if err == nil || !strings.Contains(err.Error(), "203.0.113.0/24 is not a site prefix") {
		t.Fatalf("err = %v; want refusal naming 203.0.113.0/24", err)
	}
	eventually(t, "nothing announced to either after the refused call", 10*time.Second, func() (bool, string) {
		a, b := peerA.received(t), peerB.received(t)
		return len(a) == 0 && len(b) == 0, fmt.Sprintf("A=%v B=%v", a, b)
	})
}

func TestStartStopNoLeak(t *testing.T) {
	cfg := loopbackConfig(t)
	for i := 0; i < 3; i++ {
		sp := New(Options{PeerPort: uint32(freePort(t))})
		must(t, sp.Start(context.Background(), cfg))
		sp.Stop(context.Background())
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent(), gobgpAsyncTeardown)
}

// fullImportConfig is loopbackConfig with a full table from isp-b, whose
// clean routes in the tests are in 198.18.0.0/15 (benchmarking, RFC 2544):
// not a bogon here.
func fullImportConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := loopbackConfig(t)
	cfg.Uplinks[1].BGP.Import = config.ImportFull
	cfg.Filters.BogonPrefixes = slices.DeleteFunc(slices.Clone(cfg.Filters.BogonPrefixes), func(p netip.Prefix) bool {
		return p == netip.MustParsePrefix("198.18.0.0/15")
	})
	return cfg
}

// TestImportFull: an ISP with import full sends a mix; only the routes that
// pass every filter of DESIGN.md section 8 are accepted.
func TestImportFull(t *testing.T) {
	port := freePort(t)
	startTestPeer(t, "127.0.0.2", port, 64501, []string{"0.0.0.0/0"})
	startTestPeer(t, "127.0.0.3", port, 64502, []string{
		"0.0.0.0/0",           // default: accepted
		"203.0.113.0/24",      // documentation space, allowed by the lab profile
		"198.19.0.0/24 64510", // a normal route through another AS
		"10.0.0.0/8",          // RFC 1918 bogon
		"198.51.100.128/25",   // inside our own prefix
		"198.51.100.0/24",     // our own prefix
		"192.0.2.0/25",        // longer than /24
		"198.19.1.0/24 65000", // private ASN in the path
		"198.19.2.0/24 23456", // AS_TRANS in the path
		"198.19.3.0/24 64496", // documentation ASN: allowed by the lab profile
	})
	cfg := fullImportConfig(t)
	// Nothing is announced here: open the sessions without the wait.
	var bestMu sync.Mutex
	best := map[netip.Prefix]string{}
	onBest := func(bs []BestRoute) {
		bestMu.Lock()
		defer bestMu.Unlock()
		for _, b := range bs {
			best[b.Prefix] = b.Uplink
		}
	}
	sp := New(Options{PeerPort: uint32(port), FirstAnnounceWait: time.Millisecond, OnBest: onBest})
	ctx := context.Background()
	must(t, sp.Start(ctx, cfg))
	defer sp.Stop(ctx)
	want := "map[isp-a:[0.0.0.0/0] isp-b:[0.0.0.0/0 198.19.0.0/24 198.19.3.0/24 203.0.113.0/24]]"
	eventually(t, "learned exactly the clean routes", 20*time.Second, func() (bool, string) {
		got, err := sp.Learned()
		if err != nil {
			return false, err.Error()
		}
		return fmt.Sprint(got) == want, fmt.Sprint(got)
	})
	// The counts: isp-b sent ten routes, import accepted four of them.
	eventually(t, "counted", 10*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return len(ss) == 2 && ss[0].Received == 1 && ss[0].Accepted == 1 && ss[1].Received == 10 && ss[1].Accepted == 4, fmt.Sprint(ss)
	})
	// OnBest names the uplink of every accepted best path (bgp.install).
	eventually(t, "best paths reported", 10*time.Second, func() (bool, string) {
		bestMu.Lock()
		defer bestMu.Unlock()
		return best[netip.MustParsePrefix("198.19.0.0/24")] == "isp-b" && best[netip.MustParsePrefix("203.0.113.0/24")] == "isp-b" &&
			best[netip.MustParsePrefix("0.0.0.0/0")] != "" && len(best) == 4, fmt.Sprint(best)
	})
	sample, err := sp.LearnedSample(2)
	must(t, err)
	if len(sample["isp-a"]) != 1 || len(sample["isp-b"]) != 2 {
		t.Errorf("LearnedSample(2) = %v; want isp-a's one route and two of isp-b's", sample)
	}
}

// softResetsOut sums the outbound soft resets over sp's sessions, as
// Sessions reports them.
func softResetsOut(sp *Speaker) uint64 {
	var n uint64
	for _, s := range sp.Sessions() {
		n += s.SoftResetsOut
	}
	return n
}

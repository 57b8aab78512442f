package fib

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/routing"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

func egressNS(t testing.TB) *netns.NS {
	t.Helper()
	testenv.Need(t, "ip")
	ctx := context.Background()
	n, err := netns.New(ctx, "fe"+netns.UniqueID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	for i, dev := range []string{"up-a", "up-b"} {
		for _, args := range [][]string{
			// No dummy driver on every kernel: a veth pair with both
			// ends here is just as good a device.
			{"ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "-p"},
			{"ip", "link", "set", dev + "-p", "up"},
			{"ip", "link", "set", dev, "up"},
			{"ip", "addr", "add", fmt.Sprintf("2001:db8:%d::2/64", i+1), "dev", dev, "nodad"},
			{"ip", "addr", "add", fmt.Sprintf("198.18.%d.2/24", i+1), "dev", dev},
		} {
			if _, err := n.Run(ctx, args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}

var (
	pathA = routing.EgressPath{Uplink: "isp-a", Device: "up-a", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("198.18.1.1")}, Metric: 100, Weight: 1}
	pathB = routing.EgressPath{Uplink: "isp-b", Device: "up-b", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:2::1"), netip.MustParseAddr("198.18.2.1")}, Metric: 110, Weight: 3}
)

// openEgress opens egress routes in n's main table with protocol 78,
// closed when the test ends.
func openEgress(t *testing.T, n *netns.NS) *Egress {
	t.Helper()
	e, err := NewEgress(n.Name, 254, 78)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func routesOf(t *testing.T, n *netns.NS, args ...string) string {
	t.Helper()
	out, err := n.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func states(rs []routing.EgressRoute) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, "\n")
}

func TestEgressSet(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	// A route we do not own, in the same table with another protocol, and
	// one with our protocol in another table: neither may be touched.
	if _, err := n.Run(ctx, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::9", "dev", "up-b", "metric", "5", "proto", "static"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Run(ctx, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::9", "dev", "up-b", "table", "100", "proto", "78"); err != nil {
		t.Fatal(err)
	}
	// A stale route of ours from an earlier run.
	if _, err := n.Run(ctx, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::7", "dev", "up-a", "metric", "999", "proto", "78"); err != nil {
		t.Fatal(err)
	}
	e, err := NewEgress(n.Name, 254, 78)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	want := `::/0 metric 100 via 2001:db8:1::1 dev up-a
::/0 metric 110 via 2001:db8:2::1 dev up-b
0.0.0.0/0 metric 100 via 198.18.1.1 dev up-a
0.0.0.0/0 metric 110 via 198.18.2.1 dev up-b`
	st, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(st); got != want {
		t.Fatalf("failover state:\n%s\nwant:\n%s", got, want)
	}
	// The kernel agrees. IPv6: the operator's static metric-5 route via
	// up-b wins over ours (their choice; we leave it alone). IPv4, where
	// nothing foreign competes, the best default is ours via ISP-A
	// (metric 100 before 110). IPv6 via ISP-A is checked once the foreign
	// route is gone, below.
	if got := routesOf(t, n, "ip", "-6", "route", "get", "2001:db8:9000::1"); !strings.Contains(got, "via 2001:db8:2::9 dev up-b") {
		t.Fatalf("route get with the operator's metric-5 route present: %s; want via 2001:db8:2::9", got)
	}
	if got := routesOf(t, n, "ip", "-4", "route", "get", "203.0.113.1"); !strings.Contains(got, "via 198.18.1.1 dev up-a") {
		t.Fatalf("route get 203.0.113.1: %s; want via ISP-A (198.18.1.1 dev up-a)", got)
	}
	// Idempotent: again, same state, and the kernel's routes are the same.
	before := routesOf(t, n, "ip", "-6", "route", "show", "default")
	st2, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false)
	if err != nil || states(st2) != want {
		t.Fatalf("second Set: %v\n%s", err, states(st2))
	}
	if after := routesOf(t, n, "ip", "-6", "route", "show", "default"); after != before {
		t.Fatalf("second Set changed the kernel:\n%s\n->\n%s", before, after)
	}
	// Foreign routes untouched; the stale one is gone.
	all := routesOf(t, n, "ip", "-6", "route", "show", "table", "all", "default")
	if !strings.Contains(all, "via 2001:db8:2::9 dev up-b proto static metric 5") || !strings.Contains(all, "table 100") {
		t.Fatalf("a route we do not own was touched:\n%s", all)
	}
	if strings.Contains(all, "2001:db8:1::7") {
		t.Fatalf("stale route of ours survived:\n%s", all)
	}
	// Without the operator's route the best IPv6 default is ours via ISP-A.
	if _, err := n.Run(ctx, "ip", "-6", "route", "del", "default", "via", "2001:db8:2::9", "dev", "up-b", "metric", "5", "proto", "static"); err != nil {
		t.Fatal(err)
	}
	if got := routesOf(t, n, "ip", "-6", "route", "get", "2001:db8:9000::1"); !strings.Contains(got, "via 2001:db8:1::1 dev up-a") {
		t.Fatalf("route get 2001:db8:9000::1: %s; want via ISP-A (2001:db8:1::1 dev up-a)", got)
	}
	// Back, for the checks below that it survives every Set.
	if _, err := n.Run(ctx, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::9", "dev", "up-b", "metric", "5", "proto", "static"); err != nil {
		t.Fatal(err)
	}

	// ISP-A degrades: its metric rises and ISP-B takes over.
	a := pathA
	a.Metric = 1100
	st, err = e.Set(ctx, []routing.EgressPath{a, pathB}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(st); !strings.HasPrefix(got, "::/0 metric 110 via 2001:db8:2::1 dev up-b\n::/0 metric 1100 via 2001:db8:1::1") {
		t.Fatalf("after degrade:\n%s", got)
	}
	if got := routesOf(t, n, "ip", "-4", "route", "get", "203.0.113.1"); !strings.Contains(got, "via 198.18.2.1 dev up-b") {
		t.Fatalf("route get 203.0.113.1 after ISP-A degraded: %s; want via ISP-B (198.18.2.1 dev up-b)", got)
	}
	// ISP-A down: only ISP-B remains.
	st, err = e.Set(ctx, []routing.EgressPath{pathB}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(st); got != "::/0 metric 110 via 2001:db8:2::1 dev up-b\n0.0.0.0/0 metric 110 via 198.18.2.1 dev up-b" {
		t.Fatalf("after down:\n%s", got)
	}

	// ECMP with weights.
	st, err = e.Set(ctx, []routing.EgressPath{pathA, pathB}, true)
	if err != nil {
		t.Fatal(err)
	}
	wantECMP := "::/0 metric 100 via 2001:db8:1::1 dev up-a / via 2001:db8:2::1 dev up-b weight 3\n0.0.0.0/0 metric 100 via 198.18.1.1 dev up-a / via 198.18.2.1 dev up-b weight 3"
	if got := states(st); got != wantECMP {
		t.Fatalf("ecmp:\n%s\nwant:\n%s", got, wantECMP)
	}
	if st2, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, true); err != nil || states(st2) != wantECMP {
		t.Fatalf("second ecmp Set: %v %s", err, states(st2))
	}

	// A restarted daemon adopts what is there.
	e2, err := NewEgress(n.Name, 254, 78)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if st, err := e2.State(); err != nil || states(st) != wantECMP {
		t.Fatalf("adopted state: %v\n%s", err, states(st))
	}
	// Nothing wanted: everything of ours goes, nothing else.
	if st, err := e2.Set(ctx, nil, false); err != nil || len(st) != 0 {
		t.Fatalf("empty Set: %v %v", err, st)
	}
	all = routesOf(t, n, "ip", "-6", "route", "show", "table", "all", "default")
	if !strings.Contains(all, "proto static metric 5") || !strings.Contains(all, "table 100") {
		t.Fatalf("empty Set removed a route we do not own:\n%s", all)
	}
}

func TestEgressRefusesProbeProtocol(t *testing.T) {
	if _, err := NewEgress("", 254, ProbeRouteProtocol); err == nil {
		t.Fatal("NewEgress accepted the probe tables' protocol")
	}
}

// TestEgressRetarget: moving the routes to another table, then to another
// protocol in that table, installs them in the new place before the old
// ones go, and leaves routes we do not own alone.
func TestEgressRetarget(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	// Not ours: another protocol in the tables we move through.
	if _, err := n.Run(ctx, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::9", "dev", "up-b", "table", "200", "metric", "5", "proto", "static"); err != nil {
		t.Fatal(err)
	}
	e, err := NewEgress(n.Name, 100, 78)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false); err != nil {
		t.Fatal(err)
	}
	table := func(tb string) string { return routesOf(t, n, "ip", "-6", "route", "show", "table", tb, "default") }
	if got := table("100"); strings.Count(got, "proto 78") != 2 {
		t.Fatalf("table 100 before the move:\n%s", got)
	}

	if err := e.Retarget(200, 78); err != nil {
		t.Fatal(err)
	}
	st, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := table("200"); strings.Count(got, "proto 78") != 2 || !strings.Contains(got, "proto static metric 5") {
		t.Fatalf("table 200 after the move:\n%s", got)
	}
	if got := table("100"); got != "" {
		t.Fatalf("table 100 after the move still has:\n%s", got)
	}
	if len(st) != 4 {
		t.Fatalf("state after the move: %s", states(st))
	}

	// Another protocol in the same table: replaced in place.
	if err := e.Retarget(200, 79); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false); err != nil {
		t.Fatal(err)
	}
	got := table("200")
	if strings.Count(got, "proto 79") != 2 || strings.Contains(got, "proto 78") || !strings.Contains(got, "proto static metric 5") {
		t.Fatalf("table 200 after the protocol change:\n%s", got)
	}
	if got4 := routesOf(t, n, "ip", "-4", "route", "show", "table", "200", "default"); strings.Count(got4, "proto 79") != 2 {
		t.Fatalf("IPv4 after the protocol change:\n%s", got4)
	}

	if err := e.Retarget(200, ProbeRouteProtocol); err == nil {
		t.Error("Retarget accepted the probe tables' protocol")
	}
	if err := e.Retarget(200, 79); err != nil {
		t.Errorf("Retarget to where it is: %v", err)
	}
}

// TestEgressLeavesForeignSameKey: a default route that is not ours but has
// the key one of ours would have (table, family, metric) is neither
// replaced nor deleted; Set says so, and installs the others.
func TestEgressLeavesForeignSameKey(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	if _, err := n.Run(ctx, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::9", "dev", "up-b", "metric", "100", "proto", "static"); err != nil {
		t.Fatal(err)
	}
	e, err := NewEgress(n.Name, 254, 78)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	st, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false)
	if err == nil || !strings.Contains(err.Error(), "not ours") || !strings.Contains(err.Error(), "egress.metric") {
		t.Fatalf("Set over a foreign route with our key: err = %v", err)
	}
	got := routesOf(t, n, "ip", "-6", "route", "show", "default")
	if !strings.Contains(got, "via 2001:db8:2::9 dev up-b proto static metric 100") {
		t.Fatalf("the foreign route was touched:\n%s", got)
	}
	if !strings.Contains(states(st), "::/0 metric 110 via 2001:db8:2::1 dev up-b") || !strings.Contains(states(st), "0.0.0.0/0 metric 100 via 198.18.1.1 dev up-a") {
		t.Fatalf("the other routes were not installed:\n%s", states(st))
	}
}

// TestEgressRetireAfterRestart: a new run with another protocol sees the
// previous run's defaults as foreign (they block its own) until it is told
// they were ours (Retire): then they are replaced in place.
func TestEgressRetireAfterRestart(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	old, err := NewEgress(n.Name, 254, 78)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Set(ctx, []routing.EgressPath{pathA}, false); err != nil {
		t.Fatal(err)
	}
	old.Close()

	e, err := NewEgress(n.Name, 254, 79)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Set(ctx, []routing.EgressPath{pathA}, false); err == nil || !strings.Contains(err.Error(), "not ours") {
		t.Fatalf("without Retire: err = %v, want the old routes reported as not ours", err)
	}
	if err := e.Retire(254, 78); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Set(ctx, []routing.EgressPath{pathA}, false); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []string{"-6", "-4"} {
		got := routesOf(t, n, "ip", fam, "route", "show", "default")
		if !strings.Contains(got, "proto 79") || strings.Contains(got, "proto 78") {
			t.Fatalf("%s defaults after Retire:\n%s", fam, got)
		}
	}
}

func TestUnruledFamilies(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	if got, err := UnruledFamilies(n.Name, 254); err != nil || len(got) != 0 {
		t.Fatalf("main: %v, %v", got, err)
	}
	if got, err := UnruledFamilies(n.Name, 100); err != nil || strings.Join(got, ",") != "IPv6,IPv4" {
		t.Fatalf("table 100 without rules: %v, %v", got, err)
	}
	if _, err := n.Run(ctx, "ip", "-6", "rule", "add", "from", "2001:db8:face::/48", "lookup", "100"); err != nil {
		t.Fatal(err)
	}
	if got, err := UnruledFamilies(n.Name, 100); err != nil || strings.Join(got, ",") != "IPv4" {
		t.Fatalf("table 100 with an IPv6 rule: %v, %v", got, err)
	}
}

// TestEgressShortcutAndResync: a Set asking for what the last one applied
// makes no netlink call, and State returns what that Set read back, so
// neither sees nor repairs a route an operator deleted meanwhile; after
// Invalidate (the loop's periodic resync) State reads the kernel and Set
// puts the route back.
func TestEgressShortcutAndResync(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	e := openEgress(t, n)
	paths := []routing.EgressPath{pathA}
	if _, err := e.Set(ctx, paths, false); err != nil {
		t.Fatal(err)
	}
	routesOf(t, n, "ip", "-6", "route", "del", "default", "via", "2001:db8:1::1", "dev", "up-a", "metric", "100", "proto", "78")
	hasV6 := func() bool {
		return strings.Contains(routesOf(t, n, "ip", "-6", "route", "show", "proto", "78"), "via 2001:db8:1::1")
	}
	st, err := e.Set(ctx, []routing.EgressPath{pathA}, false)
	if err != nil {
		t.Fatal(err)
	}
	if hasV6() {
		t.Fatal("a Set asking for the same paths touched the kernel: the deleted route is back without Invalidate")
	}
	if len(st) != 2 {
		t.Fatalf("shortcut returned %d routes; want the 2 read back by the Set it skips to", len(st))
	}
	if st, err := e.State(); err != nil || len(st) != 2 {
		t.Fatalf("State under the shortcut: %d routes, %v; want the 2 the last Set read back", len(st), err)
	}
	e.Invalidate()
	if st, err := e.State(); err != nil || len(st) != 1 {
		t.Fatalf("State after Invalidate: %d routes, %v; want the 1 left in the kernel", len(st), err)
	}
	if _, err := e.Set(ctx, paths, false); err != nil {
		t.Fatal(err)
	}
	if !hasV6() {
		t.Fatal("after Invalidate, Set did not repair the deleted route")
	}
}

// TestEgressLinkCache: the device lookups are cached between Sets; a
// device that is deleted and made again (a new index) is looked up again
// after Invalidate (the loop's call on a carrier change), and, without
// one, after the Set the stale index made fail.
func TestEgressLinkCache(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	e := openEgress(t, n)
	if _, err := e.Set(ctx, []routing.EgressPath{pathA}, false); err != nil {
		t.Fatal(err)
	}
	remake := func() {
		t.Helper()
		for _, args := range [][]string{
			{"ip", "link", "del", "up-a"},
			{"ip", "link", "add", "up-a", "type", "veth", "peer", "name", "up-a-p"},
			{"ip", "link", "set", "up-a-p", "up"},
			{"ip", "link", "set", "up-a", "up"},
			{"ip", "addr", "add", "2001:db8:1::2/64", "dev", "up-a", "nodad"},
			{"ip", "addr", "add", "198.18.1.2/24", "dev", "up-a"},
		} {
			routesOf(t, n, args...)
		}
	}
	viaA := func() bool {
		return strings.Contains(routesOf(t, n, "ip", "-6", "route", "show", "proto", "78"), "via 2001:db8:1::1 dev up-a")
	}
	moved := pathA
	moved.Metric = 150

	// With Invalidate: the next Set finds the new index at once.
	remake()
	e.Invalidate()
	if _, err := e.Set(ctx, []routing.EgressPath{moved}, false); err != nil {
		t.Fatalf("Set after Invalidate: %v", err)
	}
	if !viaA() {
		t.Fatal("no route via the remade up-a after Invalidate")
	}

	// Without: the Set on the stale index fails, and the next one looks
	// the device up again.
	remake()
	if _, err := e.Set(ctx, []routing.EgressPath{pathA}, false); err == nil {
		t.Fatal("Set with a cached index of a deleted device succeeded; want the kernel's error (the test no longer shows the cache)")
	}
	if _, err := e.Set(ctx, []routing.EgressPath{pathA}, false); err != nil {
		t.Fatalf("Set after the failed one: %v; want the device looked up again", err)
	}
	if !viaA() {
		t.Fatal("no route via the remade up-a after the failed Set")
	}
}

// BenchmarkEgressFailover: one failover and back as Egress.Set applies it
// (ISP-A's defaults removed, then put back), in a namespace that holds
// nothing else, 200,000 IPv6 /64s in a bgp.install table (300: a full
// table installed by multihomed itself), or 200,000 in the egress table
// (main: another daemon's full table). The ratios to the first are what
// those routes cost a failover (docs/benchmarks.md, "Failover beside a
// full table in the kernel").
func BenchmarkEgressFailover(b *testing.B) {
	for _, tc := range []struct {
		name            string
		table, protocol int
		n               int
	}{{"alone", 0, 0, 0}, {"install-table-200k", 300, 79, 200_000}, {"main-table-200k", 254, 186, 200_000}} {
		b.Run(tc.name, func(b *testing.B) {
			n := egressNS(b)
			if tc.n > 0 {
				prefixes := make([]netip.Prefix, 0, tc.n)
				for i := range tc.n {
					prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(0x80 + i>>16), 0, byte(i >> 8), byte(i)}), 64))
				}
				r, err := NewRoutes(n.Name, tc.table, tc.protocol)
				if err != nil {
					b.Fatal(err)
				}
				if err := r.SetLeg(901, "up-b", netip.MustParseAddr("2001:db8:2::9")); err != nil {
					b.Fatal(err)
				}
				if err := r.Replace(prefixes, 901); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
			e, err := NewEgress(n.Name, 254, 78)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			if _, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Set(ctx, []routing.EgressPath{pathB}, false); err != nil {
					b.Fatal(err)
				}
				if _, err := e.Set(ctx, []routing.EgressPath{pathA, pathB}, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

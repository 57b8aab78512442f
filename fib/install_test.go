package fib

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
	"github.com/multihomed/multihomed/routing"
)

// ispA4 and ispB4 are two IPv4-only uplinks on egressNS's devices, and
// both their egress paths.
var (
	ispA4 = InstallUplink{Name: "isp-a", Device: "up-a", Gateways: []netip.Addr{netip.MustParseAddr("198.18.1.1")}}
	ispB4 = InstallUplink{Name: "isp-b", Device: "up-b", Gateways: []netip.Addr{netip.MustParseAddr("198.18.2.1")}}
	both  = []routing.EgressPath{{Uplink: "isp-a", Device: "up-a"}, {Uplink: "isp-b", Device: "up-b"}}
)

// runInstaller starts an Installer for table 201, protocol 79 in n, with
// its Run going until the test ends.
func runInstaller(t *testing.T, n *netns.NS, uplinks ...InstallUplink) *Installer {
	t.Helper()
	// A blackhole nexthop lives on lo, which a new namespace has down.
	if _, err := n.Run(context.Background(), "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	in, err := NewInstaller(n.Name, 201, 79, uplinks, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		in.Close()
	})
	return in
}

// tableRoutes lists the family's (-4 or -6) routes in table, or nothing
// while the table does not exist: the kernel makes a table with its first
// route, so a poll that runs before the installer's first write finds none.
func tableRoutes(t *testing.T, n *netns.NS, family string, table int) string {
	t.Helper()
	out, err := n.Run(context.Background(), "ip", family, "route", "show", "table", fmt.Sprint(table))
	if err != nil {
		if strings.Contains(err.Error(), "FIB table does not exist") {
			return ""
		}
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestInstallerFailover: best routes from two uplinks are installed through
// their groups; when ISP-A stops carrying egress its routes resolve through
// ISP-B, with no uplink left they are dropped, and they come back to ISP-A.
func TestInstallerFailover(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	a := InstallUplink{Name: "isp-a", Device: "up-a", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("198.18.1.1")}}
	b := InstallUplink{Name: "isp-b", Device: "up-b", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:2::1"), netip.MustParseAddr("198.18.2.1")}}
	in := runInstaller(t, n, a, b)

	var changes []RouteChange
	for i := range 2000 {
		up := "isp-a"
		if i%4 == 3 {
			up = "isp-b"
		}
		changes = append(changes, RouteChange{Prefix: benchPrefix4(i), Uplink: up})
	}
	// Routes given before the groups exist wait for them.
	in.Route(changes)
	both := []routing.EgressPath{{Uplink: "isp-a", Device: "up-a"}, {Uplink: "isp-b", Device: "up-b"}}
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	// One route withdrawn, one moved to ISP-B.
	in.Route([]RouteChange{{Prefix: benchPrefix4(0)}, {Prefix: benchPrefix4(1), Uplink: "isp-b"}})
	count := func() int {
		if s := tableRoutes(t, n, "-4", 201); s != "" {
			return len(strings.Split(s, "\n"))
		}
		return 0
	}
	testenv.Eventually(t, "1999 routes installed", 20*time.Second, func() (bool, string) {
		c := count()
		return c == 1999, fmt.Sprint(c)
	})
	if _, err := n.Run(ctx, "ip", "-4", "rule", "add", "pref", "100", "lookup", "201"); err != nil {
		t.Fatal(err)
	}
	get := func(dst string) string {
		out, _ := n.Run(ctx, "ip", "route", "get", dst)
		return strings.TrimSpace(string(out))
	}
	expect := func(when string, want map[string]string) {
		t.Helper()
		for dst, w := range want {
			if got := get(dst); !strings.Contains(got, w) {
				t.Errorf("%s: %s resolves to %q; want %q", when, dst, got, w)
			}
		}
	}
	expect("both up", map[string]string{"198.19.0.33": "dev up-a", "198.19.0.49": "dev up-b", "198.19.0.17": "dev up-b"})
	if err := in.SetEgress(both[1:], false); err != nil {
		t.Fatal(err)
	}
	expect("ISP-A down", map[string]string{"198.19.0.33": "via 198.18.2.1 dev up-b", "198.19.124.225": "via 198.18.2.1 dev up-b", "198.19.0.49": "dev up-b"})
	if err := in.SetEgress(nil, false); err != nil {
		t.Fatal(err)
	}
	if got := get("198.19.0.33"); strings.Contains(got, "dev up-") {
		t.Errorf("no uplink left: 198.19.0.33 resolves to %q; want it dropped", got)
	}
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	expect("ISP-A back", map[string]string{"198.19.0.33": "via 198.18.1.1 dev up-a", "198.19.0.49": "dev up-b"})
	if c := count(); c != 1999 {
		t.Errorf("%d routes after the failover and back; want 1999 (moving groups changes no route)", c)
	}
}

// TestInstallerPurgesStale: nexthops and routes of the installer's
// protocol that an earlier run left (a group and its routes, a leg, a
// route without a nexthop) are gone once NewInstaller returns; those of
// another protocol stay.
func TestInstallerPurgesStale(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		// The earlier run's: ISP-A's leg and group, ids as NewInstaller
		// numbers them, and routes through the group.
		{"ip", "nexthop", "add", "id", fmt.Sprint(legID(0, true)), "via", "198.18.1.1", "dev", "up-a", "proto", "79"},
		{"ip", "nexthop", "add", "id", fmt.Sprint(groupID(0, true)), "group", fmt.Sprint(legID(0, true)), "proto", "79"},
		{"ip", "route", "add", "198.18.100.0/24", "nhid", fmt.Sprint(groupID(0, true)), "table", "201", "proto", "79"},
		{"ip", "route", "add", "198.18.101.0/24", "nhid", fmt.Sprint(groupID(0, true)), "table", "201", "proto", "79"},
		// A leg of an uplink since removed, in no group.
		{"ip", "nexthop", "add", "id", fmt.Sprint(legID(5, true)), "via", "198.18.2.1", "dev", "up-b", "proto", "79"},
		// A route of the protocol without a nexthop object.
		{"ip", "route", "add", "198.18.102.0/24", "via", "198.18.1.1", "table", "201", "proto", "79"},
		// Someone else's: stays.
		{"ip", "nexthop", "add", "id", "7", "via", "198.18.2.1", "dev", "up-b", "proto", "80"},
		{"ip", "route", "add", "198.18.103.0/24", "nhid", "7", "table", "201", "proto", "80"},
		{"ip", "route", "add", "198.18.104.0/24", "via", "198.18.2.1", "table", "201", "proto", "static"},
	} {
		if _, err := n.Run(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	a := InstallUplink{Name: "isp-a", Device: "up-a", Gateways: []netip.Addr{netip.MustParseAddr("198.18.1.1")}}
	in, err := NewInstaller(n.Name, 201, 79, []InstallUplink{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	if got := routesOf(t, n, "ip", "nexthop", "show", "proto", "79"); got != "" {
		t.Errorf("nexthops of protocol 79 left:\n%s", got)
	}
	if got := routesOf(t, n, "ip", "-4", "route", "show", "table", "201", "proto", "79"); got != "" {
		t.Errorf("routes of protocol 79 left in table 201:\n%s", got)
	}
	if got := routesOf(t, n, "ip", "nexthop", "show", "id", "7"); !strings.Contains(got, "proto 80") {
		t.Errorf("protocol 80's nexthop: %q; want it kept", got)
	}
	got := routesOf(t, n, "ip", "-4", "route", "show", "table", "201")
	for _, keep := range []string{"198.18.103.0/24", "198.18.104.0/24"} {
		if !strings.Contains(got, keep) {
			t.Errorf("table 201 lost %s, which is not the installer's:\n%s", keep, got)
		}
	}
}

// TestInstallerFollowsEgressTier: with ISP-A down, ISP-B degraded and
// ISP-C up (egress.mode failover), ISP-A's routes resolve through ISP-C,
// the default egress's choice, not through ISP-B as well; when ISP-C goes
// too they move to ISP-B.
func TestInstallerFollowsEgressTier(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	// ISP-C shares ISP-B's link with a gateway of its own.
	a := InstallUplink{Name: "isp-a", Device: "up-a", Gateways: []netip.Addr{netip.MustParseAddr("198.18.1.1")}}
	b := InstallUplink{Name: "isp-b", Device: "up-b", Gateways: []netip.Addr{netip.MustParseAddr("198.18.2.1")}}
	c := InstallUplink{Name: "isp-c", Device: "up-b", Gateways: []netip.Addr{netip.MustParseAddr("198.18.2.3")}}
	in := runInstaller(t, n, a, b, c)
	var changes []RouteChange
	for i := range 200 {
		changes = append(changes, RouteChange{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 0}), 24), Uplink: "isp-a"})
	}
	in.Route(changes)
	degradedB := routing.EgressPath{Uplink: "isp-b", Device: "up-b", Metric: 1010}
	upC := routing.EgressPath{Uplink: "isp-c", Device: "up-b", Metric: 20}
	if err := in.SetEgress([]routing.EgressPath{{Uplink: "isp-a", Device: "up-a", Metric: 0}, degradedB, upC}, false); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "200 routes installed", 20*time.Second, func() (bool, string) {
		c := strings.Count(tableRoutes(t, n, "-4", 201), "nhid")
		return c == 200, fmt.Sprint(c)
	})
	if _, err := n.Run(ctx, "ip", "-4", "rule", "add", "pref", "100", "lookup", "201"); err != nil {
		t.Fatal(err)
	}
	via := func(dst string) string {
		out, _ := n.Run(ctx, "ip", "route", "get", dst)
		return strings.TrimSpace(string(out))
	}
	if got := via("198.19.7.1"); !strings.Contains(got, "via 198.18.1.1 dev up-a") {
		t.Fatalf("ISP-A up: %q; want via ISP-A", got)
	}
	if err := in.SetEgress([]routing.EgressPath{degradedB, upC}, false); err != nil {
		t.Fatal(err)
	}
	// "id N group L proto 79": one leg, ISP-C's.
	if got := routesOf(t, n, "ip", "nexthop", "show", "id", fmt.Sprint(groupID(0, true))); !strings.Contains(got, fmt.Sprintf(" group %d proto", legID(2, true))) {
		t.Errorf("ISP-A down: ISP-A's group is %q; want ISP-C's leg (%d) alone", got, legID(2, true))
	}
	if got := via("198.19.7.1"); !strings.Contains(got, "via 198.18.2.3 dev up-b") {
		t.Errorf("ISP-A down: %q; want via ISP-C (198.18.2.3)", got)
	}
	if err := in.SetEgress([]routing.EgressPath{degradedB}, false); err != nil {
		t.Fatal(err)
	}
	if got := via("198.19.7.1"); !strings.Contains(got, "via 198.18.2.1 dev up-b") {
		t.Errorf("ISP-A and ISP-C down: %q; want via ISP-B (198.18.2.1)", got)
	}
}

// TestInstallerSendsOnlyChanges: SetEgress sends only the nexthops whose
// spec changed, so a pass that changes nothing leaves the kernel alone
// (seen here because a group changed by hand stays changed); after
// Invalidate it reads the nexthops back and sets again those that are no
// longer as it set them (the group changed, a leg deleted by hand).
func TestInstallerSendsOnlyChanges(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	a := InstallUplink{Name: "isp-a", Device: "up-a", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("198.18.1.1")}}
	b := InstallUplink{Name: "isp-b", Device: "up-b", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:2::1"), netip.MustParseAddr("198.18.2.1")}}
	in := runInstaller(t, n, a, b)
	both := []routing.EgressPath{{Uplink: "isp-a", Device: "up-a"}, {Uplink: "isp-b", Device: "up-b"}}
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	show := func(id uint32) string {
		out, err := n.Run(ctx, "ip", "nexthop", "show", "id", fmt.Sprint(id))
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(string(out))
	}
	groupA4, legA4, legB4 := groupID(0, true), legID(0, true), legID(1, true)
	want := fmt.Sprintf("group %d", legA4)
	if got := show(groupA4); !strings.Contains(got, want) {
		t.Fatalf("ISP-A's IPv4 group: %q; want %q", got, want)
	}
	// By hand: ISP-A's group to ISP-B's leg, ISP-B's IPv6 leg deleted
	// (with it ISP-B's IPv6 group loses its only leg and goes too).
	if _, err := n.Run(ctx, "ip", "nexthop", "replace", "id", fmt.Sprint(groupA4), "group", fmt.Sprint(legB4), "proto", "79"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Run(ctx, "ip", "nexthop", "del", "id", fmt.Sprint(legID(1, false))); err != nil {
		t.Fatal(err)
	}
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	if got, hand := show(groupA4), fmt.Sprintf("group %d", legB4); !strings.Contains(got, hand) {
		t.Fatalf("a pass that changes nothing sent ISP-A's group again: %q; want it left as set by hand (%q)", got, hand)
	}
	in.Invalidate()
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	if got := show(groupA4); !strings.Contains(got, want) {
		t.Errorf("after Invalidate ISP-A's IPv4 group is %q; want it repaired to %q", got, want)
	}
	if got := show(legID(1, false)); !strings.Contains(got, "via 2001:db8:2::1 dev up-b") {
		t.Errorf("after Invalidate ISP-B's IPv6 leg is %q; want it back via 2001:db8:2::1 dev up-b", got)
	}
	if got, w := show(groupID(1, false)), fmt.Sprintf("group %d", legID(1, false)); !strings.Contains(got, w) {
		t.Errorf("after Invalidate ISP-B's IPv6 group is %q; want %q", got, w)
	}
}

// TestInstallerRepairsAfterFailure: a leg the kernel removed behind the
// installer's back (as it does when the leg's device loses its carrier)
// makes a later SetEgress fail when a group needs it again; the next
// SetEgress reads the nexthops back and sets the leg again, without
// waiting for the resync's Invalidate.
func TestInstallerRepairsAfterFailure(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	in := runInstaller(t, n, ispA4, ispB4)
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	legA, groupA := legID(0, true), groupID(0, true)
	if _, err := n.Run(ctx, "ip", "nexthop", "del", "id", fmt.Sprint(legA)); err != nil {
		t.Fatal(err)
	}
	if err := in.SetEgress(both[1:], false); err != nil { // ISP-A down: its group on ISP-B's leg
		t.Fatal(err)
	}
	_ = in.SetEgress(both, false) // ISP-A back: its leg is missing (an error is fine here)
	if err := in.SetEgress(both, false); err != nil {
		t.Fatalf("the pass after a failed one: %v; want the missing leg set again", err)
	}
	out, err := n.Run(ctx, "ip", "nexthop", "show", "id", fmt.Sprint(groupA))
	if want := fmt.Sprintf("group %d", legA); err != nil || !strings.Contains(string(out), want) {
		t.Errorf("ISP-A's group: %q (%v); want %q", out, err, want)
	}
}

// TestInstallerResync: Resync installs the whole table it is given and
// then removes the table's routes that are neither in it nor given by
// Route since (a route the kernel kept, or one withdrawn while the
// replay's snapshot was being taken), and leaves other protocols' routes.
func TestInstallerResync(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	in := runInstaller(t, n, ispA4, ispB4)
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	var before []RouteChange
	for i := range 100 {
		before = append(before, RouteChange{Prefix: benchPrefix4(i), Uplink: "isp-a"})
	}
	in.Route(before)
	count := func() int {
		if s := tableRoutes(t, n, "-4", 201); s != "" {
			return len(strings.Split(s, "\n"))
		}
		return 0
	}
	testenv.Eventually(t, "100 routes installed", 20*time.Second, func() (bool, string) { return count() == 100, fmt.Sprint(count()) })
	if _, err := n.Run(ctx, "ip", "route", "add", "198.19.200.0/24", "via", "198.18.2.1", "table", "201", "proto", "static"); err != nil {
		t.Fatal(err)
	}
	// The snapshot has the first 60, ten of them now via ISP-B; one
	// more comes by Route after it.
	var all []RouteChange
	for i := range 60 {
		up := "isp-a"
		if i < 10 {
			up = "isp-b"
		}
		all = append(all, RouteChange{Prefix: benchPrefix4(i), Uplink: up})
	}
	in.Resync(all)
	in.Route([]RouteChange{{Prefix: benchPrefix4(80), Uplink: "isp-a"}})
	testenv.Eventually(t, "the table is the snapshot, the later change and the foreign route", 20*time.Second, func() (bool, string) {
		got := tableRoutes(t, n, "-4", 201)
		c := count()
		return c == 62 && strings.Contains(got, "198.19.200.0/24 via 198.18.2.1") && strings.Contains(got, benchPrefix4(80).String()) &&
			!strings.Contains(got, benchPrefix4(79).String()+" "), fmt.Sprintf("%d routes:\n%s", c, got)
	})
	if got := tableRoutes(t, n, "-4", 201); !strings.Contains(got, benchPrefix4(3).String()+" nhid "+fmt.Sprint(groupID(1, true))) {
		t.Errorf("a route the snapshot moved to ISP-B is not on ISP-B's group:\n%s", got)
	}
}

// TestInstallerReportsLostGroups: when ISP-A's link loses its carrier the
// kernel removes ISP-A's leg, its group and every route using it; the
// next read-back (after Invalidate, as the controller does on a carrier
// change) finds the group gone and calls the SetOnLost function.
func TestInstallerReportsLostGroups(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	in := runInstaller(t, n, ispA4, ispB4)
	lost := make(chan struct{}, 4)
	in.SetOnLost(func() { lost <- struct{}{} })
	both := []routing.EgressPath{{Uplink: "isp-a", Device: "up-a"}, {Uplink: "isp-b", Device: "up-b"}}
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	in.Route([]RouteChange{{Prefix: benchPrefix4(0), Uplink: "isp-a"}, {Prefix: benchPrefix4(1), Uplink: "isp-b"}})
	testenv.Eventually(t, "two routes", 20*time.Second, func() (bool, string) {
		s := tableRoutes(t, n, "-4", 201)
		return strings.Count(s, "\n") == 1, s
	})
	in.Invalidate()
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
		t.Fatal("SetOnLost called with every group in place")
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := n.Run(ctx, "ip", "link", "set", "up-a-p", "down"); err != nil { // up-a loses its carrier
		t.Fatal(err)
	}
	if got := tableRoutes(t, n, "-4", 201); strings.Contains(got, benchPrefix4(0).String()) {
		t.Fatalf("the kernel kept ISP-A's route after the carrier loss; the test's premise is wrong:\n%s", got)
	}
	in.Invalidate()
	_ = in.SetEgress(both[1:], false) // ISP-A down now
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the lost group was not reported")
	}
}

// TestInstallerFollowsRecreatedDevice: SetEgress remembers each uplink's
// device index between passes; a device deleted and created again under
// the same name has a new one, and the first pass after the Invalidate
// that its link event brings must set the leg on it.
func TestInstallerFollowsRecreatedDevice(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	in := runInstaller(t, n, ispA4, ispB4)
	if err := in.SetEgress(both, false); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"ip", "link", "del", "up-a"},
		{"ip", "link", "add", "up-a", "type", "veth", "peer", "name", "up-a-p"},
		{"ip", "link", "set", "up-a-p", "up"},
		{"ip", "link", "set", "up-a", "up"},
		{"ip", "addr", "add", "198.18.1.2/24", "dev", "up-a"},
	} {
		if _, err := n.Run(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	in.Invalidate()
	if err := in.SetEgress(both, false); err != nil {
		t.Fatalf("the first pass after up-a was created again: %v", err)
	}
	out, err := n.Run(ctx, "ip", "nexthop", "show", "id", fmt.Sprint(legID(0, true)))
	if err != nil || !strings.Contains(string(out), "via 198.18.1.1 dev up-a") {
		t.Errorf("ISP-A's leg: %q (%v); want it via 198.18.1.1 dev up-a", out, err)
	}
}

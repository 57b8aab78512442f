package fib

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
	"go.uber.org/goleak"
)

// twoUplinks makes a namespace with two veth uplinks and returns it with the
// device names.
func twoUplinks(t *testing.T) (*netns.NS, *netns.NS, string, string) {
	t.Helper()
	testenv.Need(t, "ip")
	ctx := context.Background()
	id := netns.UniqueID()
	edge, err := netns.New(ctx, "fe"+id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = edge.Close() })
	peer, err := netns.New(ctx, "fp"+id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	a, b := "fa"+id, "fb"+id
	for _, d := range []string{a, b} {
		if err := netns.Veth(ctx, edge, d, peer, d+"p"); err != nil {
			t.Fatal(err)
		}
	}
	for dev, p := range map[string]string{a: "2001:db8:1000:1::2/64", b: "2001:db8:2000:1::2/64"} {
		if err := edge.AddAddr(ctx, dev, netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := edge.AddAddr(ctx, a, netip.MustParsePrefix("198.18.1.2/24")); err != nil {
		t.Fatal(err)
	}
	return edge, peer, a, b
}

// openProbeTables opens probe tables in ns, closed when the test ends.
func openProbeTables(t *testing.T, ns *netns.NS) *ProbeTables {
	t.Helper()
	pt, err := NewProbeTables(ns.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pt.Close)
	return pt
}

func run(t *testing.T, ns *netns.NS, args ...string) string {
	t.Helper()
	out, err := ns.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestProbeTablesSet(t *testing.T) {
	edge, _, devA, devB := twoUplinks(t)
	ctx := context.Background()
	// Something we do not own, in a probe table and in the rules: it must
	// survive every Set.
	run(t, edge, "ip", "-6", "route", "add", "2001:db8:77::/48", "dev", devB, "table", "4801", "proto", "static")
	run(t, edge, "ip", "-6", "rule", "add", "fwmark", "0x99", "lookup", "4801", "priority", "1000", "proto", "static")

	pt := openProbeTables(t, edge)
	want := []routing.ProbeTable{
		{Uplink: "isp-a", Mark: 0x4d480100, Table: 4800, Device: devA,
			Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:1000:1::1"), netip.MustParseAddr("198.18.1.1")}},
		{Uplink: "isp-b", Mark: 0x4d480101, Table: 4801, Device: devB,
			Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:2000:1::1")}},
	}
	st1, err := pt.Set(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	// Calling Set again changes nothing.
	st2, err := pt.Set(ctx, want)
	if err != nil {
		t.Fatalf("second Set: %v", err)
	}
	if len(st1.Rules) != 4 || len(st1.Routes) != 7 || len(st2.Rules) != 4 || len(st2.Routes) != 7 {
		t.Fatalf("state: %d rules, %d routes, then %d, %d; want 4 rules (2 uplinks x 2 families) and 7 routes (3 defaults, 4 unreachable)",
			len(st1.Rules), len(st1.Routes), len(st2.Rules), len(st2.Routes))
	}
	// What an operator sees.
	rules6 := run(t, edge, "ip", "-6", "rule", "show")
	if !strings.Contains(rules6, "fwmark 0x4d480100 lookup 4800 proto 77") || !strings.Contains(rules6, "fwmark 0x4d480101 lookup 4801 proto 77") {
		t.Fatalf("ip -6 rule:\n%s", rules6)
	}
	ta := run(t, edge, "ip", "-6", "route", "show", "table", "4800")
	if !strings.Contains(ta, "default via 2001:db8:1000:1::1 dev "+devA+" proto 77 metric 1") || !strings.Contains(ta, "unreachable default dev lo proto 77") {
		t.Fatalf("table 4800:\n%s", ta)
	}
	// ISP-B has no IPv4 gateway: IPv4 lookups with its mark hit unreachable
	// instead of falling through to the main table.
	run(t, edge, "ip", "route", "add", "default", "via", "198.18.1.1", "dev", devA)
	out, err := edge.Run(ctx, "ip", "-4", "route", "get", "203.0.113.10", "mark", "0x4d480101")
	if err == nil || !strings.Contains(err.Error(), "No route to host") {
		t.Fatalf("IPv4 lookup with isp-b's mark: %s %v, want unreachable (no fall-through to main)", out, err)
	}
	// The mark decides the path: with main's IPv6 default via isp-b's link,
	// isp-a's mark still resolves via isp-a.
	run(t, edge, "ip", "-6", "route", "add", "default", "via", "2001:db8:2000:1::1", "dev", devB)
	got := run(t, edge, "ip", "-6", "route", "get", "2001:db8:9000:1::10", "mark", "0x4d480100")
	if !strings.Contains(got, "via 2001:db8:1000:1::1 dev "+devA) {
		t.Fatalf("route get with isp-a's mark: %s", got)
	}

	// Changing a gateway replaces the route; dropping an uplink removes only
	// what we own.
	want[0].Gateways = []netip.Addr{netip.MustParseAddr("2001:db8:1000:1::3")}
	if _, err := pt.Set(ctx, want[:1]); err != nil {
		t.Fatal(err)
	}
	ta = run(t, edge, "ip", "-6", "route", "show", "table", "4800")
	if !strings.Contains(ta, "via 2001:db8:1000:1::3") || strings.Contains(ta, "via 2001:db8:1000:1::1 ") {
		t.Fatalf("table 4800 after gateway change:\n%s", ta)
	}
	if v4 := run(t, edge, "ip", "-4", "route", "show", "table", "4800"); strings.Contains(v4, "198.18.1.1") {
		t.Fatalf("stale IPv4 gateway left in table 4800:\n%s", v4)
	}
	if _, err := pt.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st, err := pt.State()
	if err != nil || len(st.Rules) != 0 || len(st.Routes) != 0 {
		t.Fatalf("after Set(nil): %+v, %v", st, err)
	}
	if r := run(t, edge, "ip", "-6", "rule", "show"); !strings.Contains(r, "fwmark 0x99 lookup 4801") {
		t.Fatalf("foreign rule removed:\n%s", r)
	}
	if r := run(t, edge, "ip", "-6", "route", "show", "table", "4801"); !strings.Contains(r, "2001:db8:77::/48") {
		t.Fatalf("foreign route removed:\n%s", r)
	}

	if _, err := pt.Set(ctx, []routing.ProbeTable{{Uplink: "x", Mark: 1, Table: 254, Device: devA}}); err == nil {
		t.Fatal("Set accepted the main table")
	}
}

func TestLinkWatcher(t *testing.T) {
	defer goleak.VerifyNone(t)
	edge, peer, devA, _ := twoUplinks(t)
	ctx, cancel := context.WithCancel(context.Background())
	type ev struct {
		dev string
		up  bool
	}
	evs := make(chan ev, 100)
	done := make(chan error, 1)
	go func() {
		done <- LinkWatcher{Netns: edge.Name}.WatchCarrier(ctx, func(d string, up bool) { evs <- ev{d, up} })
	}()
	defer func() { cancel(); <-done }()
	expect := func(dev string, up bool) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case e := <-evs:
				if e.dev == dev && e.up == up {
					return
				}
			case <-timeout:
				t.Fatalf("no carrier event %s up=%v", dev, up)
			}
		}
	}
	expect(devA, true) // initial state
	// Carrier loss on the far side (the ISP's end goes down).
	run(t, peer, "ip", "link", "set", devA+"p", "down")
	expect(devA, false)
	run(t, peer, "ip", "link", "set", devA+"p", "up")
	expect(devA, true)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("WatchCarrier returned %v", err)
	}
	done <- nil
}

// TestProbeTablesCarrierLoss: with the uplink's link down (as the lab's
// link cut does it) Set succeeds with only the unreachable defaults, instead of
// failing on a gateway the kernel cannot reach, and puts the gateways back
// once carrier returns.
func TestProbeTablesCarrierLoss(t *testing.T) {
	edge, _, devA, _ := twoUplinks(t)
	ctx := context.Background()
	pt := openProbeTables(t, edge)
	tables := []routing.ProbeTable{{Uplink: "isp-a", Mark: 0x4d480100, Table: 4800, Device: devA,
		Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:1000:1::1"), netip.MustParseAddr("198.18.1.1")}}}
	if _, err := pt.Set(ctx, tables); err != nil {
		t.Fatal(err)
	}
	run(t, edge, "sysctl", "-qw", "net.ipv6.conf."+devA+".keep_addr_on_down=1")
	run(t, edge, "ip", "link", "set", devA, "down")
	// The kernel drops the gateway routes with the link; a Set that
	// still asked for them failed with "no route to host" on every pass.
	// The carrier event makes the loop invalidate what Set remembers.
	pt.Invalidate()
	st, err := pt.Set(ctx, tables)
	if err != nil {
		t.Fatalf("Set without carrier: %v", err)
	}
	if len(st.Routes) != 2 {
		t.Fatalf("without carrier: %d routes %+v; want only the 2 unreachable defaults", len(st.Routes), st.Routes)
	}
	if ta := run(t, edge, "ip", "-6", "route", "show", "table", "4800"); strings.Contains(ta, "via") {
		t.Fatalf("table 4800 without carrier still routes via a gateway:\n%s", ta)
	}
	run(t, edge, "ip", "link", "set", devA, "up")
	deadline := time.Now().Add(10 * time.Second)
	for {
		pt.Invalidate()
		st, err = pt.Set(ctx, tables)
		if err == nil && len(st.Routes) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("carrier back: %d routes, %v; want the 2 gateways back beside the 2 unreachable defaults", len(st.Routes), err)
		}
		time.Sleep(50 * time.Millisecond) // carrier comes back asynchronously
	}
}

// TestProbeTablesShortcutAndResync: a Set asking for what the last one
// applied makes no netlink call, so it does not see (nor repair) a route an
// operator deleted meanwhile; after Invalidate (the loop's periodic resync)
// the next Set puts it back. Also: an error leaves nothing remembered.
func TestProbeTablesShortcutAndResync(t *testing.T) {
	edge, _, devA, _ := twoUplinks(t)
	ctx := context.Background()
	pt := openProbeTables(t, edge)
	tables := []routing.ProbeTable{{Uplink: "isp-a", Mark: 0x4d480100, Table: 4800, Device: devA,
		Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:1000:1::1")}}}
	if _, err := pt.Set(ctx, tables); err != nil {
		t.Fatal(err)
	}
	hasGateway := func() bool {
		return strings.Contains(run(t, edge, "ip", "-6", "route", "show", "table", "4800"), "via 2001:db8:1000:1::1")
	}
	if !hasGateway() {
		t.Fatal("first Set did not install the gateway route")
	}
	run(t, edge, "ip", "-6", "route", "del", "default", "via", "2001:db8:1000:1::1", "table", "4800", "proto", "77")
	// The caller's slice changing after Set must not change what Set
	// remembers: an equal copy still takes the shortcut.
	same := []routing.ProbeTable{tables[0]}
	same[0].Gateways = []netip.Addr{netip.MustParseAddr("2001:db8:1000:1::1")}
	tables[0].Gateways[0] = netip.MustParseAddr("2001:db8:1000:1::9")
	st, err := pt.Set(ctx, same)
	if err != nil {
		t.Fatal(err)
	}
	if hasGateway() {
		t.Fatal("a Set asking for the same tables touched the kernel: the deleted route is back without Invalidate")
	}
	if len(st.Routes) != 3 {
		t.Fatalf("shortcut returned %d routes; want the 3 read back by the Set it skips to (gateway + 2 unreachable)", len(st.Routes))
	}
	pt.Invalidate()
	if _, err := pt.Set(ctx, same); err != nil {
		t.Fatal(err)
	}
	if !hasGateway() {
		t.Fatal("after Invalidate, Set did not repair the deleted gateway route")
	}

	// A failing Set remembers nothing: the next one with good tables runs
	// in full (and repairs what was deleted meanwhile).
	if _, err := pt.Set(ctx, []routing.ProbeTable{{Uplink: "isp-a", Mark: 0x4d480100, Table: 4800, Device: "nosuchdev"}}); err == nil {
		t.Fatal("Set accepted a missing device")
	}
	run(t, edge, "ip", "-6", "route", "del", "default", "via", "2001:db8:1000:1::1", "table", "4800", "proto", "77")
	if _, err := pt.Set(ctx, same); err != nil {
		t.Fatal(err)
	}
	if !hasGateway() {
		t.Fatal("after a failed Set, the next Set took the shortcut and left the route deleted")
	}
}

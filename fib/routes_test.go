package fib

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRoutesNexthopFailover: a few thousand routes installed through the
// nexthop group of ISP-A; when ISP-A fails, one replace of that group moves
// every one of them to ISP-B, and the kernel's own lookup says so.
func TestRoutesNexthopFailover(t *testing.T) {
	n := egressNS(t)
	ctx := context.Background()
	r, err := NewRoutes(n.Name, 200, 79)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const legA4, legB4, legA6, legB6, groupA4, groupA6 = 1, 2, 3, 4, 101, 103
	for _, l := range []struct {
		id  uint32
		dev string
		gw  string
	}{{legA4, "up-a", "198.18.1.1"}, {legB4, "up-b", "198.18.2.1"}, {legA6, "up-a", "2001:db8:1::1"}, {legB6, "up-b", "2001:db8:2::1"}} {
		if err := r.SetLeg(l.id, l.dev, netip.MustParseAddr(l.gw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetGroup(groupA4, legA4); err != nil {
		t.Fatal(err)
	}
	if err := r.SetGroup(groupA6, legA6); err != nil {
		t.Fatal(err)
	}
	var v4, v6 []netip.Prefix
	for i := range 3000 {
		v4 = append(v4, benchPrefix4(i))
	}
	for i := range 1000 {
		v6 = append(v6, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x80 | byte(i>>8), byte(i)}), 48))
	}
	if err := r.Replace(v4, groupA4); err != nil {
		t.Fatal(err)
	}
	if err := r.Replace(v6, groupA6); err != nil {
		t.Fatal(err)
	}
	// Idempotent: the same again changes nothing and fails nothing.
	if err := r.Replace(v4, groupA4); err != nil {
		t.Fatal(err)
	}
	for fam, want := range map[string]int{"-4": len(v4), "-6": len(v6)} {
		out := routesOf(t, n, "ip", fam, "route", "show", "table", "200")
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			if !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, " ") { // IPv6 lists the group's legs below
				lines = append(lines, l)
			}
		}
		if len(lines) != want {
			t.Fatalf("ip %s route show table 200: %d routes; want %d", fam, len(lines), want)
		}
		for _, l := range lines {
			if !strings.Contains(l, "nhid 10") || !strings.Contains(l, "proto 79") {
				t.Fatalf("route %q does not use ISP-A's nexthop group with our protocol", l)
			}
		}
	}
	if _, err := n.Run(ctx, "ip", "-4", "rule", "add", "pref", "100", "lookup", "200"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Run(ctx, "ip", "-6", "rule", "add", "pref", "100", "lookup", "200"); err != nil {
		t.Fatal(err)
	}
	lookup := func(dst string) string { return routesOf(t, n, "ip", "route", "get", dst) }
	if got := lookup("198.19.12.129"); !strings.Contains(got, "via 198.18.1.1 dev up-a") {
		t.Fatalf("before the failure 198.19.12.129 resolves to %q; want via ISP-A", got)
	}

	// ISP-A fails: one nexthop change per family moves every route.
	start := time.Now()
	if err := r.SetGroup(groupA4, legB4); err != nil {
		t.Fatal(err)
	}
	if err := r.SetGroup(groupA6, legB6); err != nil {
		t.Fatal(err)
	}
	t.Logf("moved %d routes off ISP-A with two nexthop replaces in %s", len(v4)+len(v6), time.Since(start))
	for dst, want := range map[string]string{
		"198.19.12.129":    "via 198.18.2.1 dev up-b",
		"198.19.187.113":   "via 198.18.2.1 dev up-b", // the last of the 3000
		"2001:db8:8000::1": "via 2001:db8:2::1 dev up-b",
		"2001:db8:83e7::1": "via 2001:db8:2::1 dev up-b",
	} {
		if got := lookup(dst); !strings.Contains(got, want) {
			t.Errorf("after the failure %s resolves to %q; want %s", dst, got, want)
		}
	}
	// Nothing points at ISP-A's legs any more.
	if out := routesOf(t, n, "ip", "nexthop", "show", "id", "101"); !strings.Contains(out, "group 2") {
		t.Errorf("group 101 is %q; want ISP-B's leg only", out)
	}

	if err := r.Delete(v4); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(v4[:10]); err != nil {
		t.Fatalf("deleting absent routes: %v; want no error", err)
	}
	if out := routesOf(t, n, "ip", "-4", "route", "show", "table", "200"); out != "" {
		t.Errorf("after Delete table 200 still holds %q", out)
	}
	// Deleting a group removes the routes that use it.
	if err := r.DeleteNexthop(groupA6); err != nil {
		t.Fatal(err)
	}
	if out := routesOf(t, n, "ip", "-6", "route", "show", "table", "200"); out != "" {
		t.Errorf("after deleting group %d table 200 still holds %q", groupA6, out)
	}
}

// TestRoutesNexthopMoveFullTable measures the move of a full table (1M IPv4
// and 200k IPv6 routes) off a failed uplink: the time from the nexthop
// replace until the kernel resolves the routes through ISP-B. It takes
// half a minute and a few hundred MB of kernel memory, so it runs only
// with MH_FULLTABLE=1 (docs/benchmarks.md has its figures).
func TestRoutesNexthopMoveFullTable(t *testing.T) {
	if os.Getenv("MH_FULLTABLE") != "1" {
		t.Skip("set MH_FULLTABLE=1 to install 1.2M routes")
	}
	n := egressNS(t)
	r, err := NewRoutes(n.Name, 200, 79)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.SetLeg(1, "up-a", netip.MustParseAddr("198.18.1.1")))
	must(r.SetLeg(2, "up-b", netip.MustParseAddr("198.18.2.1")))
	must(r.SetLeg(3, "up-a", netip.MustParseAddr("2001:db8:1::1")))
	must(r.SetLeg(4, "up-b", netip.MustParseAddr("2001:db8:2::1")))
	must(r.SetGroup(101, 1))
	must(r.SetGroup(103, 3))
	v4 := make([]netip.Prefix, 0, 1_000_000)
	for i := range 1_000_000 {
		v4 = append(v4, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(100 + i>>16), byte(i >> 8), byte(i), 0}), 24))
	}
	v6 := make([]netip.Prefix, 0, 200_000)
	for i := range 200_000 {
		v6 = append(v6, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48))
	}
	start := time.Now()
	must(r.Replace(v4, 101))
	must(r.Replace(v6, 103))
	t.Logf("installed %d routes in %s", len(v4)+len(v6), time.Since(start))
	ctx := context.Background()
	// With the default nexthop_compat_mode=1 the kernel sends a route
	// notification for every route of a replaced nexthop; MH_COMPAT=1
	// measures that.
	if os.Getenv("MH_COMPAT") != "1" {
		if _, err := n.Run(ctx, "sysctl", "-w", "net.ipv4.nexthop_compat_mode=0"); err != nil {
			t.Fatal(err)
		}
	}
	start = time.Now()
	must(r.SetGroup(101, 2))
	t4 := time.Since(start)
	must(r.SetGroup(103, 4))
	t.Logf("moved %d routes off ISP-A with two nexthop replaces in %s (IPv4 %s)", len(v4)+len(v6), time.Since(start), t4)
	if _, err := n.Run(ctx, "ip", "-4", "rule", "add", "pref", "100", "lookup", "200"); err != nil {
		t.Fatal(err)
	}
	if got := routesOf(t, n, "ip", "route", "get", "115.66.63.1"); !strings.Contains(got, "dev up-b") {
		t.Errorf("after the move 115.66.63.1 resolves to %q; want via ISP-B", got)
	}
	start = time.Now()
	must(r.DeleteNexthop(101))
	must(r.DeleteNexthop(103))
	t.Logf("removed them by deleting the two groups in %s", time.Since(start))
}

// benchPrefix4 is the i-th of 4,096 IPv4 /28s in 198.19.0.0/16, inside the
// benchmarking range (RFC 2544) that tests may use: 198.19.(i/16).(i%16*16)/28.
func benchPrefix4(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 4), byte(i&15) << 4}), 28)
}

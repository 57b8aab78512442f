package fib

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
	"github.com/multihomed/multihomed/routing"
)

// TestInstallerFailover: best routes from two uplinks are installed through
// their groups; when ISP-A stops carrying egress its routes resolve through
// ISP-B, with no uplink left they are dropped, and they come back to ISP-A.
func TestInstallerFailover(t *testing.T) {
	n := egressNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A blackhole nexthop lives on lo, which a new namespace has down.
	if _, err := n.Run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	a := InstallUplink{Name: "isp-a", Device: "up-a", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("198.18.1.1")}}
	b := InstallUplink{Name: "isp-b", Device: "up-b", Gateways: []netip.Addr{netip.MustParseAddr("2001:db8:2::1"), netip.MustParseAddr("198.18.2.1")}}
	in, err := NewInstaller(n.Name, 201, 79, []InstallUplink{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var changes []RouteChange
	for i := range 2000 {
		up := "isp-a"
		if i%4 == 3 {
			up = "isp-b"
		}
		changes = append(changes, RouteChange{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{185, byte(i >> 8), byte(i), 0}), 24), Uplink: up})
	}
	// Routes given before the groups exist wait for them.
	in.Route(changes)
	both := []routing.EgressPath{{Uplink: "isp-a", Device: "up-a"}, {Uplink: "isp-b", Device: "up-b"}}
	if err := in.SetEgress(both); err != nil {
		t.Fatal(err)
	}
	// One route withdrawn, one moved to ISP-B.
	in.Route([]RouteChange{{Prefix: netip.MustParsePrefix("185.0.0.0/24")}, {Prefix: netip.MustParsePrefix("185.0.1.0/24"), Uplink: "isp-b"}})
	count := func() int {
		out := routesOf(t, n, "ip", "-4", "route", "show", "table", "201")
		if out == "" {
			return 0
		}
		return len(strings.Split(out, "\n"))
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
	expect("both up", map[string]string{"185.0.2.1": "dev up-a", "185.0.3.1": "dev up-b", "185.0.1.1": "dev up-b"})
	if err := in.SetEgress(both[1:]); err != nil {
		t.Fatal(err)
	}
	expect("ISP-A down", map[string]string{"185.0.2.1": "via 198.18.2.1 dev up-b", "185.7.206.1": "via 198.18.2.1 dev up-b", "185.0.3.1": "dev up-b"})
	if err := in.SetEgress(nil); err != nil {
		t.Fatal(err)
	}
	if got := get("185.0.2.1"); strings.Contains(got, "dev up-") {
		t.Errorf("no uplink left: 185.0.2.1 resolves to %q; want it dropped", got)
	}
	if err := in.SetEgress(both); err != nil {
		t.Fatal(err)
	}
	expect("ISP-A back", map[string]string{"185.0.2.1": "via 198.18.1.1 dev up-a", "185.0.3.1": "dev up-b"})
	if c := count(); c != 1999 {
		t.Errorf("%d routes after the failover and back; want 1999 (moving groups changes no route)", c)
	}
}

package controller

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/nptv6/rfc6296"
	"github.com/multihomed/multihomed/routing"
)

// TestDesiredDNS: each host is published under its translation into every
// usable uplink's PA prefix, under all of them when none is usable
// (fail-static), and a host outside the internal prefix is an error that
// names it.
func TestDesiredDNS(t *testing.T) {
	internal := netip.MustParsePrefix("fd7a:5e1d:9c00::/48")
	a := dnsUplink{Name: "isp-a", Internal: internal, PA: netip.MustParsePrefix("2001:db8:1001::/48")}
	b := dnsUplink{Name: "isp-b", Internal: internal, PA: netip.MustParsePrefix("2001:db8:2001::/48")}
	hosts := []config.DNSHost{{Name: "www", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::80")}}
	// Expected addresses are RFC 6296 translations computed independently
	// by rfc6296 directly; the test checks which uplinks are used.
	viaA := outboundVia(t, a, hosts[0].Internal)
	viaB := outboundVia(t, b, hosts[0].Internal)
	if viaA == viaB || !a.PA.Contains(viaA) || !b.PA.Contains(viaB) {
		t.Fatalf("translations %s, %s not in their PA prefixes", viaA, viaB)
	}
	up := func(u dnsUplink, usable bool) dnsUplink { u.Usable = usable; return u }
	for _, tc := range []struct {
		name    string
		uplinks []dnsUplink
		want    []netip.Addr
	}{
		{"both usable", []dnsUplink{up(a, true), up(b, true)}, routing.AddrSet([]netip.Addr{viaA, viaB})},
		{"only b", []dnsUplink{up(a, false), up(b, true)}, []netip.Addr{viaB}},
		{"only a", []dnsUplink{up(a, true), up(b, false)}, []netip.Addr{viaA}},
		{"none usable: fail-static keeps all", []dnsUplink{up(a, false), up(b, false)}, routing.AddrSet([]netip.Addr{viaA, viaB})},
		{"no uplinks", nil, []netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := desiredDNS(hosts, tc.uplinks)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string][]netip.Addr{"www": tc.want}, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("desiredDNS (-want +got):\n%s", diff)
			}
		})
	}

	_, err := desiredDNS([]config.DNSHost{{Name: "x", Internal: netip.MustParseAddr("fd00:1::1")}}, []dnsUplink{up(a, true)})
	if err == nil || !strings.Contains(err.Error(), "host x") || !strings.Contains(err.Error(), "inside fd7a:5e1d:9c00::/48") {
		t.Errorf("host outside the internal prefix: %v", err)
	}
}

func outboundVia(t *testing.T, u dnsUplink, a netip.Addr) netip.Addr {
	t.Helper()
	tr, err := rfc6296.NewTranslator(routing.NPTMapping{Interface: u.Name, Internal: u.Internal, External: u.PA})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.Outbound(a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

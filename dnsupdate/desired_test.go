package dnsupdate

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/nptv6"
)

func TestDesired(t *testing.T) {
	internal := netip.MustParsePrefix("fd7a:5e1d:9c00::/48")
	a := Uplink{Name: "isp-a", Internal: internal, PA: netip.MustParsePrefix("2001:db8:1001::/48")}
	b := Uplink{Name: "isp-b", Internal: internal, PA: netip.MustParsePrefix("2001:db8:2001::/48")}
	hosts := []Host{{Name: "www", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::80")}}
	// Expected addresses are RFC 6296 translations computed independently
	// by the nptv6 core directly; the test checks which uplinks are used.
	viaA := outbound(t, a, hosts[0].Internal)
	viaB := outbound(t, b, hosts[0].Internal)
	if viaA == viaB || !a.PA.Contains(viaA) || !b.PA.Contains(viaB) {
		t.Fatalf("translations %s, %s not in their PA prefixes", viaA, viaB)
	}
	up := func(u Uplink, usable bool) Uplink { u.Usable = usable; return u }
	for _, tc := range []struct {
		name    string
		uplinks []Uplink
		want    []netip.Addr
	}{
		{"both usable", []Uplink{up(a, true), up(b, true)}, sorted(viaA, viaB)},
		{"only b", []Uplink{up(a, false), up(b, true)}, []netip.Addr{viaB}},
		{"only a", []Uplink{up(a, true), up(b, false)}, []netip.Addr{viaA}},
		{"none usable: fail-static keeps all", []Uplink{up(a, false), up(b, false)}, sorted(viaA, viaB)},
		{"no uplinks", nil, []netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Desired(hosts, tc.uplinks)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string][]netip.Addr{"www": tc.want}, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
		})
	}

	_, err := Desired([]Host{{Name: "x", Internal: netip.MustParseAddr("fd00:1::1")}}, []Uplink{up(a, true)})
	if err == nil || !strings.Contains(err.Error(), "host x") || !strings.Contains(err.Error(), "inside fd7a:5e1d:9c00::/48") {
		t.Errorf("host outside the internal prefix: %v", err)
	}
}

func outbound(t *testing.T, u Uplink, a netip.Addr) netip.Addr {
	t.Helper()
	tr, err := nptv6.NewTranslator(nptv6.Mapping{Interface: u.Name, Internal: u.Internal, External: u.PA})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.Outbound(a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sorted(a ...netip.Addr) []netip.Addr { return sortedUnique(a) }

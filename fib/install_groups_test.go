package fib

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/routing"
)

// TestGroupLegs: an uplink carrying egress keeps its own leg; one that
// does not gets the legs of the site's default egress: in failover mode
// the lowest-metric path only (the best tier, then configuration order),
// not every uplink still carrying egress; in ECMP mode every egress path
// given. A family no egress path has goes to the blackhole, as does
// everything when no uplink is left; another edge's default takes nothing.
func TestGroupLegs(t *testing.T) {
	v6v4 := func(n int) []netip.Addr {
		return []netip.Addr{netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(n)}), netip.AddrFrom4([4]byte{198, 18, byte(n), 1})}
	}
	ups := []InstallUplink{
		{Name: "a", Device: "up-a", Gateways: v6v4(1)},
		{Name: "b", Device: "up-b", Gateways: v6v4(2)},
		{Name: "c", Device: "up-c", Gateways: v6v4(3)},
		{Name: "v6only", Device: "up-d", Gateways: v6v4(4)[:1]},
	}
	leg := func(i int, v4 bool) []uint32 { return []uint32{legID(i, v4)} }
	both := func(i int) [2][]uint32 { return [2][]uint32{leg(i, false), leg(i, true)} }
	black := []uint32{blackholeID}
	// Metrics as the controller gives them: tier*1000 + 10*place.
	degradedB := routing.EgressPath{Uplink: "b", Metric: 1010}
	upC := routing.EgressPath{Uplink: "c", Metric: 20}
	upD := routing.EgressPath{Uplink: "v6only", Metric: 30}
	edge := routing.EgressPath{Uplink: "edge 2001:db8::99", Metric: 3000}
	tests := []struct {
		name  string
		paths []routing.EgressPath
		ecmp  bool
		want  [][2][]uint32
	}{
		{"failover: a down, b degraded, c up: a's routes go to c alone",
			[]routing.EgressPath{degradedB, upC, edge}, false,
			[][2][]uint32{both(2), both(1), both(2), {leg(2, false), leg(2, true)}}},
		{"failover: same tier, configuration order decides",
			[]routing.EgressPath{upD, upC}, false,
			[][2][]uint32{both(2), both(2), both(2), {leg(3, false), leg(2, true)}}},
		{"failover: the v6-only uplink is best for IPv6 only",
			[]routing.EgressPath{{Uplink: "v6only", Metric: 5}, degradedB}, false,
			[][2][]uint32{{leg(3, false), leg(1, true)}, both(1), {leg(3, false), leg(1, true)}, {leg(3, false), leg(1, true)}}},
		{"ecmp: every egress path of the tier",
			[]routing.EgressPath{{Uplink: "b", Metric: 10}, upC}, true,
			[][2][]uint32{{{legID(1, false), legID(2, false)}, {legID(1, true), legID(2, true)}}, both(1), both(2), {{legID(1, false), legID(2, false)}, {legID(1, true), legID(2, true)}}}},
		{"only another edge's default: everything dropped",
			[]routing.EgressPath{edge}, false,
			[][2][]uint32{{black, black}, {black, black}, {black, black}, {black, black}}},
		{"nothing left", nil, true,
			[][2][]uint32{{black, black}, {black, black}, {black, black}, {black, black}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, groupLegs(ups, tt.paths, tt.ecmp)); d != "" {
				t.Errorf("groups (-want +got):\n%s", d)
			}
		})
	}
}

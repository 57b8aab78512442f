package lab

import (
	"net/netip"
	"slices"
	"testing"
)

// TestTables: the two ISPs' plain routes split into destinations of ISP-A
// only, of both and of ISP-B only, each ISP sending exactly its count, and
// none of them a site prefix or inside an ISP's own space.
func TestTables(t *testing.T) {
	for _, tc := range []struct{ a, b, onlyA, shared, onlyB int }{
		{300, 200, 150, 150, 50},
		{300, 100, 200, 100, 0},
		{2500, 2500, 1250, 1250, 1250},
		{maxPlainRoutes, 0, maxPlainRoutes, 0, 0},
	} {
		ft := Tables(tc.a, tc.b)
		if len(ft.OnlyA) != tc.onlyA || len(ft.Shared) != tc.shared || len(ft.OnlyB) != tc.onlyB {
			t.Errorf("Tables(%d, %d): %d only A, %d shared, %d only B; want %d, %d, %d", tc.a, tc.b, len(ft.OnlyA), len(ft.Shared), len(ft.OnlyB), tc.onlyA, tc.shared, tc.onlyB)
		}
		all := slices.Concat(ft.OnlyA, ft.Shared, ft.OnlyB)
		seen := map[netip.Prefix]bool{}
		for _, p := range all {
			if seen[p] {
				t.Errorf("Tables(%d, %d): %s twice", tc.a, tc.b, p)
			}
			seen[p] = true
			if !PlainSpace6.Contains(p.Addr()) || p.Bits() != 48 {
				t.Errorf("Tables(%d, %d): %s is not a /48 of %s", tc.a, tc.b, p, PlainSpace6)
			}
			for _, own := range []netip.Prefix{SitePrefix6, ISPAPrefix6, ISPBPrefix6, TransitPrefix6, netip.MustParsePrefix("2001:db8:1fff::/48"), PAPrefixA, PAPrefixB} {
				if own.Overlaps(p) {
					t.Errorf("Tables(%d, %d): %s overlaps %s", tc.a, tc.b, p, own)
				}
			}
		}
	}
}

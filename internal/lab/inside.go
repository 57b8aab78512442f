package lab

import (
	"fmt"
	"net/netip"
)

// Full tables from both ISPs, for the health-aware inside test
// (ibgp.advertise: full): with Options.ISPAPlainRoutes and
// ISPBPlainRoutes, ISP-A sends /48s from PlainSpace6's start upwards and
// ISP-B the upper half of those and more beyond, so some destinations are
// ISP-A's only, some both ISPs', some ISP-B's only (Tables). Unlike
// ISPAExtraRoutes (the filter test's dirty table) they are all clean
// routes the edge accepts, and none of them is a site prefix, so the site
// stays reachable through both ISPs. Neither ISP sends them to the
// transit.

// PlainSpace6 holds every plain route: documentation space no lab node,
// ISP, transit or site uses, so a plain route is never a more-specific of
// an ISP's own space (which would confuse a test about whose route the
// core holds).
var PlainSpace6 = netip.MustParsePrefix("2001:db8:5000::/36")

// plainRoute is the i-th plain /48 (TestTables checks that it stays in
// PlainSpace6).
func plainRoute(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", 0x5000+i))
}

// maxPlainRoutes is how many /48s PlainSpace6 holds.
const maxPlainRoutes = 1 << (48 - 36)

// FullTables says which plain prefixes the ISPs send (Tables).
type FullTables struct {
	// OnlyA, Shared and OnlyB are sorted by address.
	OnlyA, Shared, OnlyB []netip.Prefix
}

// Tables returns the plain prefixes of ISP-A's a and ISP-B's b routes
// (Options.ISPAPlainRoutes and ISPBPlainRoutes): ISP-B's start at the
// middle of ISP-A's.
func Tables(a, b int) FullTables {
	var ft FullTables
	startB := a / 2
	for i := 0; i < max(a, startB+b); i++ {
		inA, inB := i < a, i >= startB && i < startB+b
		switch {
		case inA && inB:
			ft.Shared = append(ft.Shared, plainRoute(i))
		case inA:
			ft.OnlyA = append(ft.OnlyA, plainRoute(i))
		case inB:
			ft.OnlyB = append(ft.OnlyB, plainRoute(i))
		}
	}
	return ft
}

// plainNetworks are the FRR network lines of one ISP's plain routes,
// each through routeMap (which tags it to keep it from the transit).
func plainNetworks(ps []netip.Prefix, routeMap string) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String()+" route-map "+routeMap)
	}
	return out
}

// ispBExtraRouteMaps tags ISP-B's plain routes and keeps them from the
// transit (ISP-A's use extraRouteMaps).
const ispBExtraRouteMaps = `bgp community-list standard LAB-ISPB-EXTRA permit 64502:666
route-map ISPB-EXTRA permit 10
 set community 64502:666
route-map ISPB-TO-TRANSIT deny 10
 match community LAB-ISPB-EXTRA
route-map ISPB-TO-TRANSIT permit 20
`

package lab

import "net/netip"

// Addressing plan (DESIGN.md section 6). Link prefixes are /64 (IPv6) and
// /24 (IPv4); the first host is the provider side.
const (
	ASNEdge    = 64500
	ASNISPA    = 64501
	ASNISPB    = 64502
	ASNTransit = 64510
)

var (
	// SitePrefix6 and SitePrefix4 are the site's PI prefixes.
	SitePrefix6 = netip.MustParsePrefix("2001:db8:face::/48")
	SitePrefix4 = netip.MustParsePrefix("198.51.100.0/24")

	// Edge <-> ISP-A link.
	ISPAAddr6  = netip.MustParseAddr("2001:db8:1000:1::1")
	EdgeAAddr6 = netip.MustParseAddr("2001:db8:1000:1::2")
	ISPAAddr4  = netip.MustParseAddr("198.18.1.1")
	EdgeAAddr4 = netip.MustParseAddr("198.18.1.2")
	// Edge <-> ISP-B link.
	ISPBAddr6  = netip.MustParseAddr("2001:db8:2000:1::1")
	EdgeBAddr6 = netip.MustParseAddr("2001:db8:2000:1::2")
	ISPBAddr4  = netip.MustParseAddr("198.18.2.1")
	EdgeBAddr4 = netip.MustParseAddr("198.18.2.2")
	// ISP <-> transit links.
	ISPATrAddr6   = netip.MustParseAddr("2001:db8:9000:a::1")
	TransitAAddr6 = netip.MustParseAddr("2001:db8:9000:a::2")
	ISPATrAddr4   = netip.MustParseAddr("198.18.10.1")
	TransitAAddr4 = netip.MustParseAddr("198.18.10.2")
	ISPBTrAddr6   = netip.MustParseAddr("2001:db8:9000:b::1")
	TransitBAddr6 = netip.MustParseAddr("2001:db8:9000:b::2")
	ISPBTrAddr4   = netip.MustParseAddr("198.18.11.1")
	TransitBAddr4 = netip.MustParseAddr("198.18.11.2")
	// Transit <-> internet host.
	TransitInetAddr6 = netip.MustParseAddr("2001:db8:9000:1::1")
	InetAddr6        = netip.MustParseAddr("2001:db8:9000:1::10")
	TransitInetAddr4 = netip.MustParseAddr("203.0.113.1")
	InetAddr4        = netip.MustParseAddr("203.0.113.10")
	// Edge <-> LAN host, inside the site prefixes.
	EdgeLANAddr6 = netip.MustParseAddr("2001:db8:face:1::1")
	LANAddr6     = netip.MustParseAddr("2001:db8:face:1::10")
	EdgeLANAddr4 = netip.MustParseAddr("198.51.100.1")
	LANAddr4     = netip.MustParseAddr("198.51.100.10")

	// Space the transit and ISPs originate.
	TransitPrefix6 = netip.MustParsePrefix("2001:db8:9000::/36")
	TransitPrefix4 = netip.MustParsePrefix("203.0.113.0/24")
	ISPAPrefix6    = netip.MustParsePrefix("2001:db8:1000::/36")
	ISPBPrefix6    = netip.MustParsePrefix("2001:db8:2000::/36")
)

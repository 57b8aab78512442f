package config

import (
	"fmt"
	"net/netip"
)

// defaultBogons are the default bogon prefixes (DESIGN.md section 8, RFC
// 7454 section 6.1.3), each with what it is for messages. IPv6 outside
// 2000::/3 is rejected by a separate fixed rule, so only the
// special-purpose blocks inside it are listed.
var defaultBogons = []struct{ prefix, what string }{
	{"2001:2::/48", "benchmarking, RFC 5180"},
	{"2001:10::/28", "ORCHID, RFC 4843"},
	{"2001:db8::/32", "documentation, RFC 3849"},
	{"2002::/16", "6to4, RFC 3056 (deprecated relays)"},
	{"3ffe::/16", "the old 6bone, RFC 3701"},
	{"3fff::/20", "documentation, RFC 9637"},
	{"0.0.0.0/8", "\"this network\", RFC 791"},
	{"10.0.0.0/8", "private, RFC 1918"},
	{"100.64.0.0/10", "shared CGN space, RFC 6598"},
	{"127.0.0.0/8", "loopback"},
	{"169.254.0.0/16", "link local, RFC 3927"},
	{"172.16.0.0/12", "private, RFC 1918"},
	{"192.0.0.0/24", "IETF protocol assignments, RFC 6890"},
	{"192.0.2.0/24", "documentation TEST-NET-1, RFC 5737"},
	{"192.168.0.0/16", "private, RFC 1918"},
	{"198.18.0.0/15", "benchmarking, RFC 2544"},
	{"198.51.100.0/24", "documentation TEST-NET-2, RFC 5737"},
	{"203.0.113.0/24", "documentation TEST-NET-3, RFC 5737"},
	{"224.0.0.0/4", "multicast"},
	{"240.0.0.0/4", "reserved"},
}

// defaultBogonPrefixes is filters.bogon_prefixes when the file has none.
var defaultBogonPrefixes = func() []string {
	out := make([]string, len(defaultBogons))
	for i, b := range defaultBogons {
		out[i] = b.prefix
	}
	return out
}()

// globalUnicast6 is the IPv6 space ISPs route (RFC 4291, 2000::/3).
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// unroutable says why no ISP would carry p (outside IPv6 global unicast,
// inside a default bogon, or covering one: an aggregate such as 0.0.0.0/0
// is not a block a site owns), or "" if none of those applies.
func unroutable(p netip.Prefix) string {
	if p.Addr().Is6() && !inside(globalUnicast6, p) {
		return "is outside IPv6 global unicast (2000::/3; a ULA, fc00::/7, is for inside only)"
	}
	for _, b := range defaultBogons {
		bp := netip.MustParsePrefix(b.prefix)
		switch {
		case inside(bp, p):
			return fmt.Sprintf("is inside %s (%s)", bp, b.what)
		case inside(p, bp):
			return fmt.Sprintf("covers %s (%s): it is an aggregate of other networks' space, not a block a site owns", bp, b.what)
		}
	}
	return ""
}

// Default bogon ASNs (RFC 7607, RFC 6793, RFC 5398, RFC 6996, RFC 7300).
var defaultBogonASNs = []string{
	"0",                     // RFC 7607
	"23456",                 // AS_TRANS, RFC 6793
	"64496-131071",          // documentation, private, reserved
	"4200000000-4294967295", // private 4-byte and last ASN
}

// Documentation space that ProfileLab accepts and nothing more.
var (
	labPrefixes = []netip.Prefix{
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("3fff::/20"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
	}
	labASNs = []ASNRange{{64496, 64511}, {65536, 65551}} // RFC 5398
)

// IsDocumentation reports whether p lies inside documentation address space.
func IsDocumentation(p netip.Prefix) bool {
	for _, d := range labPrefixes {
		if inside(d, p) {
			return true
		}
	}
	return false
}

// subtractASNs removes every ASN in cut from the ranges in rs.
func subtractASNs(rs []ASNRange, cut []ASNRange) []ASNRange {
	for _, c := range cut {
		var next []ASNRange
		for _, r := range rs {
			if c.Last < r.First || c.First > r.Last {
				next = append(next, r)
				continue
			}
			if r.First < c.First {
				next = append(next, ASNRange{r.First, c.First - 1})
			}
			if r.Last > c.Last {
				next = append(next, ASNRange{c.Last + 1, r.Last})
			}
		}
		rs = next
	}
	return rs
}

// inside reports whether p is outer or lies within it (same family).
func inside(outer, p netip.Prefix) bool {
	return outer.Addr().Is4() == p.Addr().Is4() && outer.Bits() <= p.Bits() && outer.Contains(p.Addr())
}

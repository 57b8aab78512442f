package bgp

import (
	"net/netip"
	"slices"

	"github.com/multihomed/multihomed/config"
)

// Announcement is one site prefix as announced to one uplink, with the
// attributes that uplink's announcement carries.
type Announcement struct {
	// Prefix is a site prefix.
	Prefix netip.Prefix
	// Prepend is the number of extra copies of our ASN (capped at
	// config.MaxPrepend).
	Prepend uint8
	// Communities are added to the route (RFC 1997).
	Communities []config.Community
	// LargeCommunities are added to the route (RFC 8092).
	LargeCommunities []config.LargeCommunity
	// MED, when set, is sent as MULTI_EXIT_DISC.
	MED *uint32
	// GracefulShutdown adds the GRACEFUL_SHUTDOWN community 65535:0 (RFC
	// 8326) so the ISP lowers its preference before we withdraw.
	GracefulShutdown bool
}

// CommunityGracefulShutdown is the RFC 8326 well-known community.
const CommunityGracefulShutdown config.Community = 0xFFFF0000

// Equal reports whether a and b announce the same thing.
func (a Announcement) Equal(b Announcement) bool {
	medEq := (a.MED == nil) == (b.MED == nil) && (a.MED == nil || *a.MED == *b.MED)
	return a.Prefix == b.Prefix && a.Prepend == b.Prepend && a.GracefulShutdown == b.GracefulShutdown && medEq &&
		slices.Equal(a.Communities, b.Communities) && slices.Equal(a.LargeCommunities, b.LargeCommunities)
}

// BaseAnnouncements returns, for every uplink, every site prefix with the
// uplink's configured base attributes: what a healthy uplink announces.
func BaseAnnouncements(cfg *config.Config) map[string][]Announcement {
	out := make(map[string][]Announcement, len(cfg.Uplinks))
	for _, u := range cfg.Uplinks {
		for _, p := range cfg.Site.Prefixes {
			out[u.Name] = append(out[u.Name], Announcement{
				Prefix:           p,
				Prepend:          u.BGP.Prepend,
				Communities:      slices.Clone(u.BGP.Communities),
				LargeCommunities: slices.Clone(u.BGP.LargeCommunities),
				MED:              u.BGP.MED,
			})
		}
	}
	return out
}

// normalize returns anns restricted to the site prefixes, sorted by prefix,
// one entry per prefix (the last wins), with prepends capped.
func normalize(anns []Announcement, site []netip.Prefix) []Announcement {
	byPrefix := map[netip.Prefix]Announcement{}
	for _, a := range anns {
		if !slices.Contains(site, a.Prefix) {
			continue // never export anything but the site's own prefixes
		}
		a.Prepend = min(a.Prepend, config.MaxPrepend)
		byPrefix[a.Prefix] = a
	}
	out := make([]Announcement, 0, len(byPrefix))
	for _, a := range byPrefix {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Announcement) int { return comparePrefix(x.Prefix, y.Prefix) })
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

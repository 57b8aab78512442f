package bgp

import (
	"net/netip"
	"slices"

	"github.com/multihomed/multihomed/routing"

	"github.com/multihomed/multihomed/config"
)

// BaseAnnouncements returns, for every uplink, every site prefix with the
// uplink's configured base attributes: what a healthy uplink announces.
func BaseAnnouncements(cfg *config.Config) map[string][]routing.Announcement {
	out := make(map[string][]routing.Announcement, len(cfg.Uplinks))
	for _, u := range cfg.Uplinks {
		for _, p := range cfg.Site.Prefixes {
			out[u.Name] = append(out[u.Name], routing.Announcement{
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
func normalize(anns []routing.Announcement, site []netip.Prefix) []routing.Announcement {
	byPrefix := map[netip.Prefix]routing.Announcement{}
	for _, a := range anns {
		if !slices.Contains(site, a.Prefix) {
			continue // never export anything but the site's own prefixes
		}
		a.Prepend = min(a.Prepend, config.MaxPrepend)
		byPrefix[a.Prefix] = a
	}
	out := make([]routing.Announcement, 0, len(byPrefix))
	for _, a := range byPrefix {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y routing.Announcement) int { return comparePrefix(x.Prefix, y.Prefix) })
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

package routing

import (
	"net/netip"
	"slices"
)

// Announcement is one site prefix as announced to one uplink, with the
// attributes that uplink's announcement carries.
type Announcement struct {
	Prefix netip.Prefix
	// Prepend is the number of extra copies of our ASN (the speaker caps
	// it at the configured maximum).
	Prepend uint8
	// Communities are added to the route (RFC 1997).
	Communities []Community
	// LargeCommunities are added to the route (RFC 8092).
	LargeCommunities []LargeCommunity
	// MED, when set, is sent as MULTI_EXIT_DISC.
	MED *uint32
	// GracefulShutdown adds the GRACEFUL_SHUTDOWN community 65535:0 (RFC
	// 8326) so the ISP lowers its preference before we withdraw.
	GracefulShutdown bool
}

// Equal reports whether a and b announce the same thing.
func (a Announcement) Equal(b Announcement) bool {
	medEq := (a.MED == nil) == (b.MED == nil) && (a.MED == nil || *a.MED == *b.MED)
	return a.Prefix == b.Prefix && a.Prepend == b.Prepend && a.GracefulShutdown == b.GracefulShutdown && medEq &&
		slices.Equal(a.Communities, b.Communities) && slices.Equal(a.LargeCommunities, b.LargeCommunities)
}

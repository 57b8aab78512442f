package bgp

import (
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/multihomed/multihomed/config"
)

// importFilter answers, for one session, whether the import policy that
// buildPolicies installs in GoBGP accepts a path. The speaker counts
// Accepted with it from the pre-policy update stream instead of watching
// GoBGP's post-policy stream: GoBGP v4.8.0 copies the peer's whole
// configuration for every path it queues on that stream, a fifth to a
// third of a full-table import's CPU (prefixcount.go).
//
// It restates the accept/reject statements of policy.go (uplinks) and
// edgepeers.go (internal peers) in Go, in the same order; the actions that
// only set LOCAL_PREF change nothing here. TestImportFilterMatchesGoBGP
// feeds one path per statement through a real GoBGP and fails if the two
// disagree, so a statement added to one side and not the other shows.
type importFilter struct {
	kind    filterKind
	mode    config.ImportMode // kind uplink
	peerASN uint32            // kind uplink: the first AS every path must start with
	// bogonASNs are the single bogon ASNs, bogonRanges the ranges: GoBGP
	// matches them differently (hasBogonASN).
	bogonASNs   []uint32
	bogonRanges []config.ASNRange
	// site and bogons reject their prefixes and anything more specific.
	site, bogons []netip.Prefix
}

type filterKind uint8

const (
	filterRejectAll filterKind = iota // internal core routers: we take nothing
	filterUplink                      // an ISP's session
	filterEdge                        // another edge of the site: defaults and site-state routes
)

// The fixed import limits, shared with the GoBGP policy (policy.go) so the
// two cannot drift apart.
var (
	// globalUnicastV6: IPv6 routes outside it are rejected.
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	// RFC 7454 section 6.1.3: nothing longer than /48 (IPv6) or /24 (IPv4).
	maxLenV6, maxLenV4 = 48, 24
)

// newImportFilter returns the filter of session sc under cfg.
func newImportFilter(cfg *config.Config, sc sessionConfig) *importFilter {
	if sc.internal {
		for _, p := range cfg.IBGP.EdgePeers() {
			if p.Neighbor == sc.neighborAddr {
				return &importFilter{kind: filterEdge}
			}
		}
		return &importFilter{kind: filterRejectAll}
	}
	f := &importFilter{kind: filterUplink, peerASN: sc.peerASN, site: cfg.Site.Prefixes, bogons: cfg.Filters.BogonPrefixes}
	for _, r := range cfg.Filters.BogonASNs {
		// asnRangeRegexp gives a plain number exactly when the range is
		// one ASN: GoBGP then takes the single-ASN match.
		if r.First == r.Last {
			f.bogonASNs = append(f.bogonASNs, r.First)
		} else {
			f.bogonRanges = append(f.bogonRanges, r)
		}
	}
	for _, u := range cfg.Uplinks {
		if u.Name == sc.uplink {
			f.mode = u.BGP.Import
		}
	}
	return f
}

// accepts reports whether import accepts pfx with the path attributes
// attrs (only an uplink's rules read them).
func (f *importFilter) accepts(pfx netip.Prefix, attrs []bgp.PathAttributeInterface) bool {
	isDefault := pfx.Bits() == 0
	switch f.kind {
	case filterEdge:
		return isDefault || (pfx.Bits() == 128 && SiteStateRange.Contains(pfx.Addr()))
	case filterUplink:
	default:
		return false
	}
	if f.mode == config.ImportNone {
		return false
	}
	asPath := asPathOf(attrs)
	if f.hasBogonASN(asPath) || !startsWith(asPath, f.peerASN) || within(pfx, f.site) {
		return false
	}
	if isDefault {
		return true
	}
	if f.mode == config.ImportDefault {
		return false
	}
	if pfx.Addr().Is6() && !covers(globalUnicastV6, pfx) {
		return false
	}
	if within(pfx, f.bogons) {
		return false
	}
	if pfx.Addr().Is6() {
		return pfx.Bits() <= maxLenV6
	}
	return pfx.Bits() <= maxLenV4
}

// covers reports whether p is outer or more specific, in outer's family:
// a GoBGP prefix-set entry "outer, length outer.Bits() to the maximum".
func covers(outer, p netip.Prefix) bool {
	return outer.Addr().Is4() == p.Addr().Is4() && p.Bits() >= outer.Bits() && outer.Contains(p.Addr())
}

func within(p netip.Prefix, set []netip.Prefix) bool {
	for _, o := range set {
		if covers(o, p) {
			return true
		}
	}
	return false
}

// GoBGP matches an AS-path set entry of the form "^N_" or "_N_" (one ASN)
// without a regular expression: against the path's sequence list, the
// members of every AS_SEQUENCE in order with each other segment (AS_SET,
// confederation) standing as a single 0. Any other entry is a regular
// expression over the path's text (bgp.AsPathString).

// seqList calls fn with each entry of p's sequence list until fn returns
// true, and reports whether it did.
func seqList(p *bgp.PathAttributeAsPath, fn func(uint32) bool) bool {
	if p == nil {
		return false
	}
	for _, seg := range p.Value {
		if seg.GetType() != bgp.BGP_ASPATH_ATTR_TYPE_SEQ {
			if fn(0) {
				return true
			}
			continue
		}
		for _, a := range seg.GetAS() {
			if fn(a) {
				return true
			}
		}
	}
	return false
}

// startsWith is GoBGP's match of "^asn_": the first entry of the sequence
// list is asn (a path that opens with a set starts with 0; an empty path
// matches nothing).
func startsWith(p *bgp.PathAttributeAsPath, asn uint32) bool {
	var first uint32
	found := seqList(p, func(a uint32) bool {
		first = a
		return true
	})
	return found && first == asn
}

// hasBogonASN reports whether a bogon ASN matches the path: a single
// bogon ASN ("_N_") against the sequence list, so an AS_SET counts as AS 0,
// a bogon by default (RFC 7607); a range (a regular expression "_(...)_")
// against the path's text, where every member of a sequence or a set can
// match. Confederation segments never get here: GoBGP treats an UPDATE
// from an external peer that carries one as a withdrawal (RFC 7606
// section 7.2), which the pre-policy stream reports as such.
func (f *importFilter) hasBogonASN(p *bgp.PathAttributeAsPath) bool {
	if p == nil {
		return false
	}
	if len(f.bogonASNs) > 0 && seqList(p, func(a uint32) bool { return slices.Contains(f.bogonASNs, a) }) {
		return true
	}
	for _, seg := range p.Value {
		for _, a := range seg.GetAS() {
			for _, r := range f.bogonRanges {
				if a >= r.First && a <= r.Last {
					return true
				}
			}
		}
	}
	return false
}

// asPathOf returns the path's AS_PATH attribute, or nil.
func asPathOf(attrs []bgp.PathAttributeInterface) *bgp.PathAttributeAsPath {
	for _, a := range attrs {
		if p, ok := a.(*bgp.PathAttributeAsPath); ok {
			return p
		}
	}
	return nil
}

package dnsupdate

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/multihomed/multihomed/nptv6"
)

// Uplink is what Desired needs to know about one uplink in PA mode.
type Uplink struct {
	// Name identifies the uplink in errors.
	Name string
	// Internal is the site's internal prefix and PA the prefix this uplink's
	// ISP delegated; the NPTv6 translator maps one to the other (RFC 6296).
	Internal, PA netip.Prefix
	// Usable says the controller lets traffic use this uplink now.
	Usable bool
}

// Desired computes the AAAA set each host should publish: its internal
// address translated into the PA prefix of every usable uplink. When no
// uplink is usable it publishes all of them (fail-static, DESIGN.md section
// 3: all probes failing at once more likely means the probe targets are
// down than every ISP, and an empty answer would take the site off the
// internet for sure). Every host is a key of the result, and addresses are
// sorted. It is pure: the controller may call it from Decide.
//
// hosts carry the names as configured; the keys are those names unchanged.
func Desired(hosts []Host, uplinks []Uplink) (map[string][]netip.Addr, error) {
	use := make([]Uplink, 0, len(uplinks))
	for _, u := range uplinks {
		if u.Usable {
			use = append(use, u)
		}
	}
	if len(use) == 0 {
		use = uplinks
	}
	translators := make([]*nptv6.Translator, 0, len(use))
	for _, u := range use {
		t, err := nptv6.NewTranslator(nptv6.Mapping{Interface: u.Name, Internal: u.Internal, External: u.PA})
		if err != nil {
			return nil, fmt.Errorf("dnsupdate: uplink %s: %w", u.Name, err)
		}
		translators = append(translators, t)
	}
	out := make(map[string][]netip.Addr, len(hosts))
	for _, h := range hosts {
		addrs := make([]netip.Addr, 0, len(translators))
		for _, t := range translators {
			a, err := t.Outbound(h.Internal)
			if err != nil {
				return nil, fmt.Errorf("dnsupdate: host %s (%s) via uplink %s: %w; give an internal address inside %s", h.Name, h.Internal, t.Mapping().Interface, err, t.Internal())
			}
			addrs = append(addrs, a)
		}
		out[h.Name] = sortedUnique(addrs)
	}
	return out, nil
}

// sortedUnique returns addrs sorted with duplicates removed, as a new slice.
func sortedUnique(addrs []netip.Addr) []netip.Addr {
	s := slices.Clone(addrs)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}

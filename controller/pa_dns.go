package controller

import (
	"fmt"
	"net/netip"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/nptv6/rfc6296"
	"github.com/multihomed/multihomed/routing"
)

// dnsUplink is what desiredDNS needs to know about one uplink in PA mode.
type dnsUplink struct {
	// Name identifies the uplink in errors.
	Name string
	// Internal is the site's internal prefix and PA the prefix this uplink's
	// ISP delegated; the NPTv6 translator maps one to the other (RFC 6296).
	Internal, PA netip.Prefix
	// Usable says the controller lets traffic use this uplink now.
	Usable bool
}

// desiredDNS computes the AAAA set each host should publish: its internal
// address translated into the PA prefix of every usable uplink. When no
// uplink is usable it publishes all of them (fail-static, DESIGN.md section
// 3: all probes failing at once more likely means the probe targets are
// down than every ISP, and an empty answer would take the site off the
// internet for sure). Every host is a key of the result, under its name as
// configured, and addresses are sorted. It is pure: Decide calls it.
func desiredDNS(hosts []config.DNSHost, uplinks []dnsUplink) (map[string][]netip.Addr, error) {
	use := make([]dnsUplink, 0, len(uplinks))
	for _, u := range uplinks {
		if u.Usable {
			use = append(use, u)
		}
	}
	if len(use) == 0 {
		use = uplinks
	}
	translators := make([]*rfc6296.Translator, 0, len(use))
	for _, u := range use {
		t, err := rfc6296.NewTranslator(routing.NPTMapping{Interface: u.Name, Internal: u.Internal, External: u.PA})
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
		out[h.Name] = routing.AddrSet(addrs)
	}
	return out, nil
}

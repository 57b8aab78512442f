package controller

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/routing"
)

// PADesired is the PA-mode part of a decision (DESIGN.md section 1): the
// translator's mappings, the IPv4 source NAT and the published AAAA sets.
type PADesired struct {
	// Mappings are the NPTv6 mappings, one per uplink whose link has
	// carrier: internal prefix <-> that uplink's PA prefix on its
	// interface. Inbound traffic to a PA prefix is translated back as long
	// as the link is there, whatever the health verdict: an established
	// connection through a gray uplink may still work, and removing the
	// mapping cannot make it work better. Outbound, the egress routes
	// decide which mapping a packet meets.
	Mappings []routing.NPTMapping
	// Return are the uplinks whose inbound connections get their replies
	// routed back through them (returnpath), whatever carries egress: one
	// per uplink with a mapping and a return mark (paReturnRouting). Without
	// it, a reply leaves through the egress uplink, translated into that
	// ISP's prefix, and the client drops it.
	Return []routing.ReturnUplink
	// NAT44 are the IPv4 source NAT rules, one per uplink with nat44.
	// They are static: which one a flow meets is the egress routes' choice.
	NAT44 []routing.NATRule
	// DNS is each published host's desired AAAA set (nil without a dns
	// section, during the startup wait and once decommissioned: nothing is
	// handed to the DNS runner then).
	DNS map[string][]netip.Addr
	// DNSUplinks names the uplinks whose translations DNS publishes, in
	// configuration order; all of them when none is usable (fail-static).
	DNSUplinks []string
	// DNSError is why DNS could not be computed (a host address that has no
	// translation, RFC 6296 section 3.5); DNS is nil then.
	DNSError string
}

// decidePA fills d.PA for a PA-mode site and names the uplinks whose NAT44
// conntrack entries must go (d.FlushNAT): those that carried egress in the
// previous decision and no longer do. It runs last in Decide, on the final
// egress.
func decidePA(cfg *config.Config, obs Observed, d *Desired) {
	pa := &PADesired{}
	d.PA = pa
	hairpin := cfg.NPTv6.Backend == config.NPTv6EBPF // ip6t_NPT cannot hairpin
	var dnsUplinks []dnsUplink
	for _, dec := range d.Uplinks {
		i := slices.IndexFunc(cfg.Uplinks, func(u config.Uplink) bool { return u.Name == dec.Uplink })
		if i < 0 || !cfg.Uplinks[i].PAPrefix.IsValid() {
			continue
		}
		u := cfg.Uplinks[i]
		o := obs.Uplinks[u.Name]
		if !o.CarrierDown && !d.Decommissioned {
			pa.Mappings = append(pa.Mappings, routing.NPTMapping{Interface: u.Interface, Internal: cfg.Site.InternalPrefix, External: u.PAPrefix, Hairpin: hairpin})
			if mark, _, ok := paReturnRouting(cfg, i); ok {
				pa.Return = append(pa.Return, routing.ReturnUplink{Device: u.Interface, Mark: mark})
			}
		}
		if u.NAT44 != nil && cfg.Site.InternalPrefixIPv4.IsValid() && !d.Decommissioned {
			pa.NAT44 = append(pa.NAT44, routing.NATRule{Device: u.Interface, Inside: cfg.Site.InternalPrefixIPv4, Source: u.NAT44.Source})
		}
		if u.NAT44 != nil && obs.Memory[u.Name].Egress && !dec.Egress {
			d.FlushNAT = append(d.FlushNAT, u.Name)
		}
		// Published while healthy and carrying egress. Fail-static egress
		// (TierLast without a verdict for it) is not "usable": with none
		// usable, desiredDNS publishes every uplink's address.
		usable := dec.Egress && !d.FailStatic && (dec.State == StateUp || dec.State == StateDegraded)
		dnsUplinks = append(dnsUplinks, dnsUplink{Name: u.Name, Internal: cfg.Site.InternalPrefix, PA: u.PAPrefix, Usable: usable})
	}
	if cfg.DNS == nil || d.Waiting || d.Decommissioned {
		return
	}
	dns, err := desiredDNS(cfg.DNS.Hosts, dnsUplinks)
	if err != nil {
		pa.DNSError = err.Error()
		return
	}
	pa.DNS = dns
	for _, u := range dnsUplinks {
		if u.Usable {
			pa.DNSUplinks = append(pa.DNSUplinks, u.Name)
		}
	}
	if len(pa.DNSUplinks) == 0 {
		for _, u := range dnsUplinks {
			pa.DNSUplinks = append(pa.DNSUplinks, u.Name)
		}
	}
}

// failStaticPA is the safety rule in PA mode, where nothing is announced:
// when no uplink would carry egress, every uplink whose link is up and that
// the operator did not force down carries it anyway (TierLast), and the
// alarm is raised. All probes failing at once more likely means the probe
// targets are down than every ISP.
func failStaticPA(cfg *config.Config, obs Observed, d *Desired) {
	if slices.ContainsFunc(d.Uplinks, func(x Decision) bool { return x.Egress }) {
		return
	}
	var held []string
	for i := range d.Uplinks {
		dec := &d.Uplinks[i]
		if obs.Uplinks[dec.Uplink].CarrierDown || dec.State == StateForcedDown {
			continue
		}
		held = append(held, dec.Uplink+" ("+string(dec.State)+")")
		dec.Egress, dec.EgressTier = true, TierLast
		dec.Reason += "; fail-static: egress anyway"
	}
	if len(held) > 0 {
		d.FailStatic = true
		d.Alarm = "fail-static: no uplink would carry egress; routing through every uplink with a link: " + strings.Join(held, ", ")
	}
}

// paReturnRouting is the firewall mark and routing table that send a
// packet through uplink i only, for the replies of connections that came
// in through it (PA mode): its probe table's (health.mark, health.table),
// whose table holds only that uplink's default routes. An uplink without
// a health block (its BGP session tells whether it works) gets a table of
// its own all the same in PA mode (ProbeTablesFor adds it), with the mark
// and table a health block at its place would default to, unless another
// uplink's health block or the egress table took them: then ok is false and
// replies through it follow the egress routes (docs/pa-mode.md).
func paReturnRouting(cfg *config.Config, i int) (mark uint32, table int, ok bool) {
	u := cfg.Uplinks[i]
	if cfg.Site.Mode != config.ModePA || !u.PAPrefix.IsValid() {
		return 0, 0, false
	}
	if u.Health != nil {
		return u.Health.Mark, u.Health.Table, true
	}
	mark, table = health.MarkBase+uint32(i), health.TableBase+i
	if table == cfg.Egress.Table {
		return 0, 0, false
	}
	for _, o := range cfg.Uplinks {
		if o.Health != nil && (o.Health.Mark == mark || o.Health.Table == table) {
			return 0, 0, false
		}
	}
	return mark, table, true
}

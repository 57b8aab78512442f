package api

import (
	"context"
	"net/netip"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/routing"
)

// uplinkPA renders the named uplink's NPTv6 mapping with its counters
// (matched on interface and PA prefix, so a mapping left from an older
// configuration is not shown as this one's) and its NAT44 setting.
func uplinkPA(cfg *config.Config, pa *controller.PAStatus, name string) (*apiv1.Translation, string) {
	i := -1
	for j, u := range cfg.Uplinks {
		if u.Name == name {
			i = j
		}
	}
	if i < 0 {
		return nil, ""
	}
	u := cfg.Uplinks[i]
	nat := ""
	if u.NAT44 != nil {
		nat = "interface"
		if u.NAT44.Source.IsValid() {
			nat = u.NAT44.Source.String()
		}
	}
	tr := &apiv1.Translation{InternalPrefix: cfg.Site.InternalPrefix.String(), PaPrefix: u.PAPrefix.String()}
	if pa == nil {
		return tr, nat
	}
	for _, m := range pa.Mappings {
		if m.Interface == u.Interface && m.External == u.PAPrefix {
			tr.Active, tr.Hairpin = true, m.Hairpin
		}
	}
	for _, c := range pa.Counters {
		if c.Mapping.Interface == u.Interface && c.Mapping.External == u.PAPrefix {
			tr.OutPackets, tr.OutBytes, tr.InPackets, tr.InBytes = c.OutPackets, c.OutBytes, c.InPackets, c.InBytes
			tr.OutDrops, tr.InDrops, tr.Hairpinned = c.OutDrops, c.InDrops, c.Hairpinned
		}
	}
	return tr, nat
}

// dnsToProto renders the DNS publication; nil without a dns section.
func dnsToProto(pa *controller.PAStatus) *apiv1.DNS {
	if pa.DNS == nil && pa.DNSError == "" {
		return nil
	}
	out := &apiv1.DNS{Via: pa.DNSUplinks, DesiredError: pa.DNSError}
	if s := pa.DNS; s != nil {
		out.Zone, out.Converged, out.LastAttempt, out.Failures, out.NextRetry = s.Zone, s.Converged, ts(s.LastAttempt), uint32(s.Failures), ts(s.NextRetry)
		if s.LastErr != nil {
			out.LastError = s.LastErr.Error()
		}
		for _, h := range s.Hosts {
			out.Hosts = append(out.Hosts, &apiv1.DNSHost{Name: h.Name, Desired: addrStrings(h.Desired), Published: addrStrings(h.Published), Known: h.Known})
		}
	}
	return out
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// TranslationReader reads the NPTv6 datapath's mappings and counters
// (nptv6.Datapath's Counters). Safe for concurrent use.
type TranslationReader interface {
	Counters(ctx context.Context) ([]routing.NPTCounters, error)
}

// liveTranslation returns st with the PA mappings and counters read now,
// when the server has a TranslationReader and st is a PA-mode snapshot;
// st itself is never changed (other readers share it).
func (s *Server) liveTranslation(ctx context.Context, st *controller.Status) *controller.Status {
	if s.translation == nil || st.PA == nil {
		return st
	}
	cs, err := s.translation.Counters(ctx)
	pa := *st.PA
	pa.Counters, pa.Mappings, pa.CountersError = cs, nil, ""
	if err != nil {
		pa.CountersError = err.Error()
	}
	for _, c := range cs {
		pa.Mappings = append(pa.Mappings, c.Mapping)
	}
	out := *st
	out.PA = &pa
	return &out
}

package api

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/routing"
)

// TestStatusPA: a PA-mode snapshot shows the mode, each uplink's mapping
// with its own counters (not another uplink's, not a stale mapping's), its
// NAT44, and the DNS records per host with the last result.
func TestStatusPA(t *testing.T) {
	cfg, err := config.Parse("test", []byte(`
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {mode: pa, internal_prefix: "fd7a:5e1d:9c00::/48", internal_prefix_ipv4: 192.0.2.0/24}
uplinks:
  - {name: isp-a, interface: eth-a, gateway: "2001:db8:1000:1::1", gateway_ipv4: 198.18.1.1, pa_prefix: "2001:db8:1001::/48", nat44: 198.18.1.2, health: {targets: ["icmp://2001:db8:9000:1::10"]}}
  - {name: isp-b, interface: eth-b, gateway: "2001:db8:2000:1::1", pa_prefix: "2001:db8:2001::/48", health: {targets: ["icmp://2001:db8:9000:1::10"]}}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Site.InternalPrefix
	mA := routing.NPTMapping{Interface: "eth-a", Internal: in, External: netip.MustParsePrefix("2001:db8:1001::/48"), Hairpin: true}
	stale := routing.NPTMapping{Interface: "eth-b", Internal: in, External: netip.MustParsePrefix("2001:db8:2999::/48")}
	b1 := netip.MustParseAddr("2001:db8:2001:1::80")
	st := &controller.Status{
		Desired: controller.Desired{Uplinks: []controller.Decision{{Uplink: "isp-a", State: controller.StateUp}, {Uplink: "isp-b", State: controller.StateDown}}, PA: &controller.PADesired{}},
		PA: &controller.PAStatus{
			Mappings: []routing.NPTMapping{mA, stale},
			Counters: []routing.NPTCounters{{Mapping: mA, OutPackets: 7, InPackets: 5, Hairpinned: 1}, {Mapping: stale, OutPackets: 99}},
			DNS: &routing.DNSStatus{Zone: "site.example.", Failures: 3, LastErr: errors.New("dnsupdate: bad key"), LastAttempt: t0,
				Hosts: []routing.DNSHostStatus{{Name: "www", Desired: []netip.Addr{b1}, Published: []netip.Addr{b1, netip.MustParseAddr("2001:db8:1001:1::80")}, Known: true}}},
			DNSUplinks: []string{"isp-b"},
		},
	}
	out := statusToProto(st, probeFigures{}, cfg, t0)
	if out.GetMode() != "pa" {
		t.Errorf("mode %q; want pa", out.GetMode())
	}
	a, b := out.GetUplinks()[0], out.GetUplinks()[1]
	if tr := a.GetTranslation(); !tr.GetActive() || tr.GetOutPackets() != 7 || tr.GetInPackets() != 5 || tr.GetHairpinned() != 1 || tr.GetPaPrefix() != "2001:db8:1001::/48" || a.GetNat44() != "198.18.1.2" {
		t.Errorf("isp-a: %v nat44 %q", tr, a.GetNat44())
	}
	if tr := b.GetTranslation(); tr.GetActive() || tr.GetOutPackets() != 0 || b.GetNat44() != "" {
		t.Errorf("isp-b: %v nat44 %q; want inactive, no counters (the stale mapping is not its own), no NAT", tr, b.GetNat44())
	}
	d := out.GetDns()
	if d.GetZone() != "site.example." || d.GetConverged() || d.GetLastError() != "dnsupdate: bad key" || d.GetFailures() != 3 || !slices.Equal(d.GetVia(), []string{"isp-b"}) {
		t.Errorf("dns = %v", d)
	}
	if h := d.GetHosts()[0]; h.GetName() != "www" || !slices.Equal(h.GetDesired(), []string{b1.String()}) || len(h.GetPublished()) != 2 || !h.GetKnown() {
		t.Errorf("dns host = %v", h)
	}
	// Metrics: counters per mapping, records per host.
	ctl := newFakeController()
	ctl.status.Store(st)
	gathered, err := NewMetrics(ctl).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	fams := map[string]*dto.MetricFamily{}
	for _, f := range gathered {
		fams[f.GetName()] = f
	}
	if v := value(t, fams, "multihomed_nptv6_packets_total", "interface", "eth-a", "pa_prefix", "2001:db8:1001::/48", "direction", "out"); v != 7 {
		t.Errorf("nptv6 packets out via eth-a = %v; want 7", v)
	}
	if v := value(t, fams, "multihomed_dns_published_addresses", "host", "www"); v != 2 {
		t.Errorf("published www = %v; want 2", v)
	}
	if v := value(t, fams, "multihomed_dns_update_failures"); v != 3 {
		t.Errorf("dns failures = %v; want 3", v)
	}
	// PI mode: no PA fields.
	pi := statusToProto(&controller.Status{}, probeFigures{}, nil, t0)
	if pi.GetMode() != "pi" || pi.GetDns() != nil {
		t.Errorf("PI status = %v", pi)
	}
}

type fakeTranslation []routing.NPTCounters

func (f fakeTranslation) Counters(context.Context) ([]routing.NPTCounters, error) { return f, nil }

// TestLiveTranslation: GetStatus reads the counters at the call, without
// touching the loop's shared snapshot.
func TestLiveTranslation(t *testing.T) {
	m := routing.NPTMapping{Interface: "eth-a", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00::/48"), External: netip.MustParsePrefix("2001:db8:1001::/48")}
	st := &controller.Status{PA: &controller.PAStatus{Counters: []routing.NPTCounters{{Mapping: m, OutPackets: 1}}}}
	s := &Server{translation: fakeTranslation{{Mapping: m, OutPackets: 500}}}
	got := s.liveTranslation(context.Background(), st)
	if got.PA.Counters[0].OutPackets != 500 || len(got.PA.Mappings) != 1 {
		t.Errorf("live counters %+v; want 500 packets and the mapping", got.PA)
	}
	if st.PA.Counters[0].OutPackets != 1 {
		t.Error("the shared snapshot was changed")
	}
	if pi := (&controller.Status{}); s.liveTranslation(context.Background(), pi) != pi {
		t.Error("a PI snapshot was copied")
	}
}

package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/multihomed/multihomed/controller"
)

// PA mode's metrics: the translator's counters per mapping, and the DNS
// publication per host.
var (
	descNPTPackets   = prometheus.NewDesc("multihomed_nptv6_packets_total", "Packets translated by the uplink's NPTv6 mapping (direction out: sources, in: destinations).", []string{"interface", "pa_prefix", "direction"}, nil)
	descNPTDrops     = prometheus.NewDesc("multihomed_nptv6_drops_total", "Packets of the mapping RFC 6296 forbids translating (eBPF backend only).", []string{"interface", "pa_prefix", "direction"}, nil)
	descDNSPublished = prometheus.NewDesc("multihomed_dns_published_addresses", "AAAA records the DNS server holds for the host, as last read or written.", []string{"host"}, nil)
	descDNSDesired   = prometheus.NewDesc("multihomed_dns_desired_addresses", "AAAA records the daemon wants published for the host.", []string{"host"}, nil)
	descDNSConverged = prometheus.NewDesc("multihomed_dns_converged", "1 when the DNS server holds the desired records.", nil, nil)
	descDNSFailures  = prometheus.NewDesc("multihomed_dns_update_failures", "Consecutive failed DNS update attempts (0 once converged).", nil, nil)
)

func describePA(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNPTPackets, descNPTDrops, descDNSPublished, descDNSDesired, descDNSConverged, descDNSFailures} {
		ch <- d
	}
}

func collectPA(ch chan<- prometheus.Metric, st *controller.Status) {
	if st.PA == nil {
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, c := range st.PA.Counters {
		ifc, pa := c.Mapping.Interface, c.Mapping.External.String()
		counter(descNPTPackets, c.OutPackets, ifc, pa, "out")
		counter(descNPTPackets, c.InPackets, ifc, pa, "in")
		counter(descNPTDrops, c.OutDrops, ifc, pa, "out")
		counter(descNPTDrops, c.InDrops, ifc, pa, "in")
	}
	if d := st.PA.DNS; d != nil {
		for _, h := range d.Hosts {
			gauge(descDNSDesired, float64(len(h.Desired)), h.Name)
			if h.Known {
				gauge(descDNSPublished, float64(len(h.Published)), h.Name)
			}
		}
		gauge(descDNSConverged, b2f(d.Converged))
		gauge(descDNSFailures, float64(d.Failures))
	}
}

package config

import "math"

// Defaults of the egress section.
const (
	DefaultEgressTable    = 254 // main
	DefaultEgressProtocol = 78  // 77 is fib's probe tables'
	DefaultEgressMetric   = 100
)

// egress checks the egress section. The table may not be one of the uplinks'
// probe tables.
func (c *checker) egress(r rawEgress, uplinks []Uplink) Egress {
	e := Egress{Mode: EgressFailover, Table: DefaultEgressTable, Protocol: DefaultEgressProtocol, Metric: DefaultEgressMetric}
	switch EgressMode(r.Mode) {
	case "", EgressFailover:
	case EgressECMP:
		e.Mode = EgressECMP
	default:
		c.add("egress.mode", "%q is not a mode; use failover or ecmp", r.Mode)
	}
	if r.Table != nil {
		if t := *r.Table; t < 1 || t > math.MaxInt32 || t == 255 || t == 253 {
			c.add("egress.table", "%d is reserved or out of range; use 254 (main) or a table of your own", t)
		} else {
			e.Table = int(t)
		}
	}
	if r.Protocol != nil {
		if p := *r.Protocol; p < 5 || p > 255 || p == 77 {
			c.add("egress.protocol", "%d is reserved or out of range; use 5-255 except 77 (the probe tables' own), a number no other routing daemon uses (see /etc/iproute2/rt_protos)", p)
		} else {
			e.Protocol = int(p)
		}
	}
	e.Metric = inRange(c, "egress.metric", r.Metric, 1, 1<<30, e.Metric)
	for i, u := range uplinks {
		if u.Health != nil && u.Health.Table == e.Table {
			c.add("egress.table", "%d is uplinks[%d]'s probe table (health.table); the site's defaults there would take that uplink's probes elsewhere: use another table for one of them", e.Table, i)
		}
	}
	return e
}

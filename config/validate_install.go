package config

import "math"

// DefaultInstallProtocol marks the routes of bgp.install (77 is fib's probe
// tables', 78 the egress defaults').
const DefaultInstallProtocol = 79

// install checks bgp.install. Without a table nothing is installed and the
// protocol is not checked.
func (c *checker) install(r rawInstall, egress Egress, uplinks []Uplink) Install {
	if r.Table == nil {
		if r.Protocol != nil {
			c.add("bgp.install.protocol", "is set but bgp.install.table is not; set the table to install the accepted routes, or remove the protocol")
		}
		return Install{}
	}
	in := Install{Protocol: DefaultInstallProtocol}
	t := *r.Table
	switch {
	case t < 1 || t > math.MaxInt32 || t == 253 || t == 255:
		c.add("bgp.install.table", "%d is reserved or out of range; use a table of your own (1-2147483647 except 253-255)", t)
	case t == 254:
		c.add("bgp.install.table", "254 is the main table; a full table there changes every lookup on the host: use a table of your own and an ip rule that sends the site's traffic to it")
	default:
		in.Table = int(t)
	}
	for i, u := range uplinks {
		if u.Health != nil && u.Health.Table == in.Table {
			c.add("bgp.install.table", "%d is uplinks[%d]'s probe table (health.table): use another table", in.Table, i)
		}
	}
	if r.Protocol != nil {
		if p := *r.Protocol; p < 5 || p > 255 || p == 77 || int(p) == egress.Protocol {
			c.add("bgp.install.protocol", "%d is reserved, out of range or egress.protocol; use 5-255 except 77 and egress.protocol (%d), a number no other routing daemon uses", p, egress.Protocol)
		} else {
			in.Protocol = int(p)
		}
	}
	if in.Protocol == egress.Protocol {
		c.add("bgp.install.protocol", "%d is also egress.protocol; set bgp.install.protocol to another number", in.Protocol)
	}
	full := false
	for _, u := range uplinks {
		full = full || u.BGP.Import == ImportFull
	}
	if !full {
		c.add("bgp.install.table", "is set but no uplink has bgp.import: full; only full tables are installed (the default routes are egress's)")
	}
	return in
}

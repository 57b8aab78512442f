package routing

import "net/netip"

// ProbeTable is the probe routing of one uplink.
type ProbeTable struct {
	// Uplink names the uplink (for errors only).
	Uplink string
	// Mark is the firewall mark the uplink's probe sockets carry.
	Mark uint32
	// Table is the routing table that holds only this uplink's default
	// route(s) and an unreachable default per family, so that a probe can
	// never fall through to another uplink.
	Table int
	// Device is the uplink's interface.
	Device string
	// Gateways are the next hops of the uplink's default routes, at most one
	// per family. A family without a gateway is unreachable in the table.
	Gateways []netip.Addr
}

// ProbeRule is an fwmark rule the probe tables own, as read back from
// the kernel.
type ProbeRule struct {
	IPv6     bool
	Mark     uint32
	Table    int
	Priority int
}

// ProbeRoute is a route the probe tables own, as read back.
type ProbeRoute struct {
	Table int
	// Dst is ::/0 or 0.0.0.0/0.
	Dst netip.Prefix
	// Gateway and Device of a forwarding route; Unreachable for the
	// catch-all.
	Gateway     netip.Addr
	Device      string
	Unreachable bool
	Metric      int
}

// ProbeState is what the probe tables own in the kernel.
type ProbeState struct {
	Rules  []ProbeRule
	Routes []ProbeRoute
}

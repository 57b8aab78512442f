package routing

import (
	"fmt"
	"net/netip"
	"strings"
)

// EgressPath is one uplink's share of the site's default routes.
type EgressPath struct {
	// Uplink names the uplink (errors and state only).
	Uplink string
	// Device is the uplink's interface.
	Device string
	// Gateways are the next hops, at most one per family.
	Gateways []netip.Addr
	// Metric orders paths in failover mode (lower wins).
	Metric int
	// Weight is the path's share in ECMP mode (1-256).
	Weight int
}

// EgressRoute is a default route fib owns, as read back from the kernel.
type EgressRoute struct {
	// Dst is ::/0 or 0.0.0.0/0.
	Dst netip.Prefix
	// Metric is the route's priority.
	Metric int
	// NextHops are the route's next hops (several in ECMP mode).
	NextHops []EgressNextHop
}

// EgressNextHop is one next hop of an EgressRoute.
type EgressNextHop struct {
	Gateway netip.Addr
	Device  string
	Weight  int
}

// String formats r as ip route would.
func (r EgressRoute) String() string {
	var hops []string
	for _, h := range r.NextHops {
		s := fmt.Sprintf("via %s dev %s", h.Gateway, h.Device)
		if h.Weight > 1 {
			s += fmt.Sprintf(" weight %d", h.Weight)
		}
		hops = append(hops, s)
	}
	return fmt.Sprintf("%s metric %d %s", r.Dst, r.Metric, strings.Join(hops, " / "))
}

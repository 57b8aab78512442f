package routing

import (
	"net/netip"
	"time"
)

// UplinkState is what an edge tells the other edges of its site about one
// of its uplinks (docs/deployment.md, "site state").
type UplinkState struct {
	// Uplink is the uplink's name in the sending edge's configuration.
	Uplink string
	// State is the uplink's decided state (controller.State's values:
	// up, degraded, down, drained, forced-down, unknown).
	State string
}

// Usable reports whether an uplink in state carries the site: up or
// degraded. A drained uplink is on its way out and does not count.
func Usable(state string) bool { return state == "up" || state == "degraded" }

// RemoteUplink is one uplink of another edge, as learned over iBGP.
type RemoteUplink struct {
	// Edge is the other edge's BGP router ID.
	Edge netip.Addr
	// Neighbor is the iBGP session it was learned on.
	Neighbor netip.Addr
	// Uplink is the uplink's name in that edge's configuration.
	Uplink string
	// State is what that edge decided for it (UplinkState.State).
	State string
	// Since is when this edge learned the current state.
	Since time.Time
	// Stale is true while the session is down and graceful restart keeps
	// the route (the other edge's daemon restarts, or the edge is dead):
	// shown, but not counted as usable.
	Stale bool
}

// RemoteDefault is a default route another edge originates over iBGP: the
// edge has a usable uplink and takes traffic for the internet.
type RemoteDefault struct {
	// Neighbor is the iBGP session it was learned on.
	Neighbor netip.Addr
	// Dst is ::/0 or 0.0.0.0/0.
	Dst netip.Prefix
	// NextHop is the route's next hop.
	NextHop netip.Addr
}

// SiteView is what this edge learned from the site's other edges.
type SiteView struct {
	// Uplinks are the other edges' uplinks, ordered by edge then uplink.
	Uplinks []RemoteUplink
	// Defaults are the other edges' default routes, ordered by neighbor
	// then family (IPv6 first).
	Defaults []RemoteDefault
}

package controller

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/routing"
)

// EdgeEgress is another edge's default route installed as this edge's
// last-resort egress: LAN traffic that reaches an edge without a usable
// ISP goes on to an edge that has one.
type EdgeEgress struct {
	// Neighbor is the iBGP session the default came over.
	Neighbor netip.Addr
	// Device is ibgp.peers[].interface of that peer.
	Device string
	// Gateway is the default's next hop (the neighbor when the route
	// names none of the session's family).
	Gateway netip.Addr
	// Metric is the route metric in failover mode (EdgeMetric).
	Metric int
}

// EdgePathName names the egress path via the edge peer at neighbor (in
// routing.EgressPath.Uplink, which fib uses in errors only): it cannot be
// an uplink's name, which has no space.
func EdgePathName(neighbor netip.Addr) string { return "edge " + neighbor.String() }

// EdgeMetric is the route metric of the default via the edge peer at
// index (among the edge peers, in configuration order): egress.metric,
// plus the TierRemote step, plus 10 per place, so it loses to every local
// uplink's default and the configuration order decides between edges.
func EdgeMetric(cfg *config.Config, index int) int {
	return cfg.Egress.Metric + TierRemote*tierMetricStep + 10*index
}

// remoteUsable counts the usable uplinks of the other edges. A stale one
// (its session is down; graceful restart keeps the route) does not count:
// the other edge may be restarting, but it may as well be dead, and
// counting it could let this edge withdraw its last uplink and isolate
// the site for restart_time. Not counting it can only keep this edge
// announcing (fail-static), the safe side.
func remoteUsable(v routing.SiteView) int {
	n := 0
	for _, u := range v.Uplinks {
		if routing.Usable(u.State) && !u.Stale {
			n++
		}
	}
	return n
}

// siteEgress fills d.EdgeEgress from the defaults the other edges send,
// for edge peers the configuration still has. In ECMP mode only the best
// tier present carries traffic, so the other edges' defaults are used only
// when no local uplink has egress; in failover mode they are always there,
// behind every local default, so the kernel falls back to them the moment
// a local route goes. Nothing is routed to another edge once the site is
// decommissioned.
func siteEgress(cfg *config.Config, obs Observed, d *Desired) {
	if d.Decommissioned {
		return
	}
	if cfg.Egress.Mode == config.EgressECMP {
		for _, dec := range d.Uplinks {
			if dec.Egress {
				return
			}
		}
	}
	edges := cfg.IBGP.EdgePeers()
	for _, rd := range obs.Remote.Defaults {
		for i, p := range edges {
			if p.Neighbor != rd.Neighbor {
				continue
			}
			gw := rd.NextHop
			if !gw.IsValid() || gw.IsUnspecified() || gw.Is4() != rd.Dst.Addr().Is4() {
				gw = rd.Neighbor
			}
			if gw.Is4() != rd.Dst.Addr().Is4() {
				continue // a default of the other family without a usable next hop
			}
			d.EdgeEgress = append(d.EdgeEgress, EdgeEgress{Neighbor: p.Neighbor, Device: p.Interface, Gateway: gw, Metric: EdgeMetric(cfg, i)})
		}
	}
}

// siteState is what this edge tells the other edges: each uplink's
// effective state, unknown while waiting for the first verdicts (an
// unknown uplink is not usable, so no other edge withdraws because of
// it).
func siteState(d Desired) []routing.UplinkState {
	out := make([]routing.UplinkState, 0, len(d.Uplinks))
	for _, dec := range d.Uplinks {
		st := dec.State
		if d.Waiting {
			st = StateUnknown
		}
		out = append(out, routing.UplinkState{Uplink: dec.Uplink, State: string(st)})
	}
	return out
}

// siteView reads what the other edges told us. An error is logged once
// per change and gives an empty view: this edge then decides as if alone,
// which can only keep announcing (fail-static), never withdraw more.
func (l *Loop) siteView() routing.SiteView {
	if l.deps.Site == nil {
		return routing.SiteView{}
	}
	v, err := l.deps.Site.SiteView()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg != l.siteErr && msg != "" {
		l.log.Warn("the other edges' state cannot be read; deciding as a single edge", "error", msg)
	}
	l.siteErr = msg
	return v
}

// remoteKey identifies one uplink of another edge.
type remoteKey struct {
	edge   netip.Addr
	uplink string
}

// recordRemoteEvents turns changes of the other edges' uplinks into
// events: a new or changed state, and a state gone with its session.
func (l *Loop) recordRemoteEvents(now time.Time, v routing.SiteView) {
	cur := map[remoteKey]routing.RemoteUplink{}
	for _, u := range v.Uplinks {
		cur[remoteKey{u.Edge, u.Uplink}] = u
	}
	prev := l.remote
	l.remote = cur
	for _, k := range sortedRemoteKeys(cur) {
		u := cur[k]
		p, seen := prev[k]
		if seen && p.State == u.State && p.Stale == u.Stale {
			continue
		}
		from := StateUnknown
		if seen {
			from = State(p.State)
		}
		reason := fmt.Sprintf("edge %s says %s is %s (learned from %s)", u.Edge, u.Uplink, u.State, u.Neighbor)
		if u.Stale {
			reason += "; stale: the session is down, graceful restart keeps it until restart_time"
		}
		l.history.add(Event{Time: now, Edge: u.Edge.String(), Uplink: u.Uplink, From: from, To: State(u.State), Reason: reason, Actions: []string{"remote view changed"}})
		l.log.Info("remote uplink", "edge", u.Edge, "uplink", u.Uplink, "from", from, "to", u.State, "stale", u.Stale)
	}
	for _, k := range sortedRemoteKeys(prev) {
		if _, ok := cur[k]; ok {
			continue
		}
		p := prev[k]
		reason := fmt.Sprintf("edge %s no longer says anything about %s: the session with %s ended or the edge removed the uplink", k.edge, k.uplink, p.Neighbor)
		l.history.add(Event{Time: now, Edge: k.edge.String(), Uplink: k.uplink, From: State(p.State), To: StateUnknown, Reason: reason, Actions: []string{"remote view expired"}})
		l.log.Warn("remote uplink expired", "edge", k.edge, "uplink", k.uplink, "was", p.State)
	}
}

func sortedRemoteKeys(m map[remoteKey]routing.RemoteUplink) []remoteKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b remoteKey) int {
		if c := a.edge.Compare(b.edge); c != 0 {
			return c
		}
		return strings.Compare(a.uplink, b.uplink)
	})
	return keys
}

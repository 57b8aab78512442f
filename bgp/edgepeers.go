package bgp

import (
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/multihomed/multihomed/config"
)

// Policy objects for the site's other edges (ibgp.peers with role edge).
const (
	setEdges     = "mh-nbr-edges"
	setSiteState = "mh-site-state-v6"
)

// edgeDefaultLocalPref is the LOCAL_PREF another edge's default gets on
// import. It must lose to our own originated default (GoBGP counts a path
// without LOCAL_PREF as 100): only the best path is exported, and an
// iBGP-learned best path is never sent to the core, so our default would
// vanish from the core while the other edge's won here.
const edgeDefaultLocalPref = 1

// addEdgePolicies adds what the edge peers may send and hear. Import: the
// other edges' defaults (at edgeDefaultLocalPref) and their site-state
// routes, nothing else (a site prefix, a more-specific, anything). Export:
// our site-state routes, to the edges only. Our default reaches them
// through the internal-default statement every internal peer gets.
func addEdgePolicies(cfg *config.Config, add func(*api.DefinedSet), imp, exp *api.Policy) {
	edges := cfg.IBGP.EdgePeers()
	if len(edges) == 0 {
		return
	}
	var nbrs []string
	for _, p := range edges {
		nbrs = append(nbrs, netip.PrefixFrom(p.Neighbor, p.Neighbor.BitLen()).String())
	}
	add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: setEdges, List: nbrs})
	add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: setSiteState, Prefixes: []*api.Prefix{prefixRange(SiteStateRange, 128, 128)}})
	fromEdges := func(c *api.Conditions) *api.Conditions {
		c.NeighborSet = &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setEdges}
		return c
	}
	for _, fam := range []struct{ name, set string }{{"v6", setDefaultV6}, {"v4", setDefaultV4}} {
		imp.Statements = append(imp.Statements, &api.Statement{
			Name:       "mh-import-edge-default-" + fam.name,
			Conditions: fromEdges(&api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: fam.set}}),
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, LocalPref: &api.LocalPrefAction{Value: edgeDefaultLocalPref}},
		})
	}
	imp.Statements = append(imp.Statements,
		&api.Statement{
			Name:       "mh-import-edge-state",
			Conditions: fromEdges(&api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setSiteState}}),
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
		},
		&api.Statement{
			Name:       "mh-import-edge-other",
			Conditions: fromEdges(&api.Conditions{}),
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT},
		})
	exp.Statements = append(exp.Statements, &api.Statement{
		Name: "mh-export-edge-state",
		Conditions: &api.Conditions{
			RouteType:   api.Conditions_ROUTE_TYPE_LOCAL,
			NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setEdges},
			PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setSiteState},
		},
		Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	})
}

// ibgpPassive reports whether we wait for an edge peer to connect instead
// of dialling it: the edge with the higher session address waits, so two
// edges never open a session at the same moment from both sides (a
// connection collision, RFC 4271 section 6.8, which GoBGP was seen to
// leave half open between two of our edges). Without a local_address the
// order is unknown and both dial.
func ibgpPassive(p config.IBGPPeer) bool {
	return p.Role == config.RoleEdge && p.LocalAddress.IsValid() && p.LocalAddress.Compare(p.Neighbor) > 0
}

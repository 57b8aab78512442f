package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/multihomed/multihomed/config"
)

// Health-aware inside (ibgp.advertise: full): the routes accepted from
// import: full uplinks go to the core peers, each with the LOCAL_PREF of its
// uplink's health, so the core (and our own best-path choice) picks the best
// healthy exit per destination.
//
// The LOCAL_PREF is set on import, per uplink, because export cannot tell
// which uplink a route came from (GoBGP's neighbor condition on export
// matches the peer the route goes to). A health change therefore rebuilds
// the policies and soft-resets inbound that uplink's sessions only: GoBGP
// re-runs import over the routes that uplink sent (its Adj-RIB-In), and the
// changed best paths go out as usual. No other session is walked.
//
// A down uplink's routes are not rejected on import: bgp.install keeps them
// in the kernel, pointing at that uplink's nexthop group, which fib moves to
// the usable uplinks in one change. They get the lowest LOCAL_PREF (so any
// healthy uplink's path wins here too) and the large community
// node.asn:insideLocal1:0, which the export to the core rejects: the core
// gets a withdrawal, or the next best path where another uplink has one.
// An ISP that sends that community itself only keeps its own routes out of
// the core.
//
// Usable routes tagged GRACEFUL_SHUTDOWN get insideGshutLocalPref, one above
// the mark's: at the same LOCAL_PREF a tie-breaker could pick the marked
// path, which export rejects, and the core would lose a destination that
// has a usable path. The ladder's lowest value (ibgp.local_pref_degraded)
// is at least config.MinInsideLocalPref, above both.
const (
	setCore              = "mh-nbr-core"
	setNotInside         = "mh-not-inside"
	insideLocal1         = 2
	notInsideLocalPf     = gracefulShutdownLocalPref
	insideGshutLocalPref = notInsideLocalPf + 1
)

func notInsideCommunity(asn uint32) string { return fmt.Sprintf("%d:%d:0", asn, insideLocal1) }

// advertiseFull reports whether cfg sends the full routes to core peers.
func advertiseFull(cfg *config.Config) bool {
	return cfg.IBGP.Advertise == config.AdvertiseFull && len(corePeers(cfg)) > 0
}

func corePeers(cfg *config.Config) []string {
	var out []string
	for _, p := range cfg.IBGP.Peers {
		if p.Role == config.RoleCore {
			out = append(out, netip.PrefixFrom(p.Neighbor, p.Neighbor.BitLen()).String())
		}
	}
	return out
}

// fullImportActions returns the actions of an import: full uplink's two
// accepting statements: routes tagged GRACEFUL_SHUTDOWN and all others.
// Without inside advertisement they are today's (LOCAL_PREF only on
// GRACEFUL_SHUTDOWN, RFC 8326); with it every route carries its uplink's
// LOCAL_PREF (GRACEFUL_SHUTDOWN ones insideGshutLocalPref), or the
// not-inside mark while the uplink is not usable (lp 0).
func fullImportActions(in policyInput, uplink string) (gshut, accept *api.Actions) {
	gshut = &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, LocalPref: &api.LocalPrefAction{Value: gracefulShutdownLocalPref}}
	accept = &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
	if !advertiseFull(in.cfg) {
		return gshut, accept
	}
	lp := in.insideLP[uplink]
	if lp > 0 {
		gshut.LocalPref = &api.LocalPrefAction{Value: insideGshutLocalPref}
		accept.LocalPref = &api.LocalPrefAction{Value: lp}
		return gshut, accept
	}
	mark := &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: []string{notInsideCommunity(in.cfg.Node.ASN)}}
	gshut.LargeCommunity = mark
	accept.LocalPref = &api.LocalPrefAction{Value: notInsideLocalPf}
	accept.LargeCommunity = mark
	return gshut, accept
}

// addInsideExport adds the export of learned routes to the core peers:
// never a default (ours is originated with the edge's own LOCAL_PREF, an
// ISP's must not replace it), never a route with the not-inside mark,
// everything else from an uplink with next hop self (the core cannot reach
// the ISP's address). Edge peers get none of it: each edge advertises its
// own best routes to the core, and the edge import policy would reject them.
func addInsideExport(in policyInput, add func(*api.DefinedSet), exp *api.Policy) {
	if !advertiseFull(in.cfg) {
		return
	}
	add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: setCore, List: corePeers(in.cfg)})
	add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_LARGE_COMMUNITY, Name: setNotInside, List: []string{"^" + notInsideCommunity(in.cfg.Node.ASN) + "$"}})
	learnedToCore := func(c *api.Conditions) *api.Conditions {
		c.RouteType = api.Conditions_ROUTE_TYPE_EXTERNAL
		c.NeighborSet = &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setCore}
		return c
	}
	reject := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}
	for _, fam := range []struct{ name, set string }{{"v6", setDefaultV6}, {"v4", setDefaultV4}} {
		exp.Statements = append(exp.Statements, &api.Statement{
			Name:       "mh-export-inside-no-default-" + fam.name,
			Conditions: learnedToCore(&api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: fam.set}}),
			Actions:    reject,
		})
	}
	exp.Statements = append(exp.Statements,
		&api.Statement{
			Name:       "mh-export-inside-not-usable",
			Conditions: learnedToCore(&api.Conditions{LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setNotInside}}),
			Actions:    reject,
		},
		&api.Statement{
			Name:       "mh-export-inside",
			Conditions: learnedToCore(&api.Conditions{}),
			Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, Nexthop: &api.NexthopAction{Self: true}},
		})
}

// SetInsideLocalPrefs sets, per uplink, the LOCAL_PREF its full-table
// routes carry to the core peers (ibgp.advertise: full); 0, or an uplink
// left out, withdraws them from the core. Uplinks without import: full are
// ignored, and so is the whole call without advertise: full (which also
// forgets the preferences: a reload turning it on starts with every
// uplink's routes withdrawn from the core until the next call). Only the
// sessions of uplinks whose value changed are soft-reset inbound, so a
// change costs a walk of that uplink's routes. Idempotent; a reset that
// failed is retried by the next call.
func (s *Speaker) SetInsideLocalPrefs(ctx context.Context, prefs map[string]uint32) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: speaker not started")
	}
	if !advertiseFull(s.cfg) {
		// Forget the last preferences: a reload turning advertise: full
		// on must not re-import with ones that went stale meanwhile.
		s.insideLP = nil
		return nil
	}
	want := map[string]uint32{}
	changed := map[string]bool{}
	for _, u := range s.cfg.Uplinks {
		if u.BGP.Import != config.ImportFull {
			continue
		}
		want[u.Name] = prefs[u.Name]
		if want[u.Name] != s.insideLP[u.Name] {
			changed[u.Name] = true
		}
	}
	for addr := range s.inResetDue {
		if sc, ok := s.sessions[addr]; ok {
			changed[sc.uplink] = true
		} else {
			delete(s.inResetDue, addr)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	old := s.insideLP
	s.insideLP = want
	if err := s.setPoliciesLocked(ctx, s.exportStateLocked()); err != nil {
		s.insideLP = old
		return fmt.Errorf("bgp: inside preferences: %w", err)
	}
	var errs []error
	for addr, sc := range s.sessions {
		if sc.internal || !changed[sc.uplink] {
			continue
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN}); err != nil {
			s.inResetDue[addr] = true
			errs = append(errs, fmt.Errorf("bgp: soft reset in %s (uplink %s) for its inside preference: %w", addr, sc.uplink, err))
			continue
		}
		delete(s.inResetDue, addr)
		s.log.Debug("inside preference applied", keyUplink, sc.uplink, keyPeer, addr, "local_pref", want[sc.uplink])
	}
	return errors.Join(errs...)
}

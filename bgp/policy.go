package bgp

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"

	"github.com/multihomed/multihomed/config"
)

// Names of the policy objects this package installs. Every name starts with
// "mh-" so the objects are recognisable in GoBGP's own tools.
const (
	policyImport = "mh-import"
	policyExport = "mh-export"

	setSiteV6     = "mh-site-v6"
	setSiteV4     = "mh-site-v4"
	setDefaultV6  = "mh-default-v6"
	setDefaultV4  = "mh-default-v4"
	setBogonV6    = "mh-bogon-v6"
	setBogonV4    = "mh-bogon-v4"
	setGlobalV6   = "mh-global-unicast-v6"
	setTooLongV6  = "mh-too-long-v6"
	setTooLongV4  = "mh-too-long-v4"
	setBogonASNs  = "mh-bogon-asns"
	setGracefulSD = "mh-graceful-shutdown"
	setExportSite = "mh-export-site-" // + v6 or v4: the prefixes export may send
)

func neighborSetName(uplink string) string    { return "mh-nbr-" + uplink }
func firstASSetName(uplink string) string     { return "mh-first-as-" + uplink }
func markSetName(id uint32) string            { return fmt.Sprintf("mh-mark-%d", id) }
func uplinkMarksSetName(uplink string) string { return "mh-marks-" + uplink }

// policyInput is everything the policies depend on.
type policyInput struct {
	cfg      *config.Config
	export   exportState       // the marks and originated prefixes the export must know (exportmarks.go)
	insideLP map[string]uint32 // per import: full uplink, LOCAL_PREF toward the core; 0: not sent (inside.go)
}

const setIBGP = "mh-nbr-internal"

// buildPolicies returns the complete set of defined sets and policies. It is
// pure: the same input gives the same request, so tests can read it and the
// speaker can compare it with what it installed last.
func buildPolicies(in policyInput) *api.SetPoliciesRequest {
	req := &api.SetPoliciesRequest{}
	add := func(ds *api.DefinedSet) { req.DefinedSets = append(req.DefinedSets, ds) }

	// Site prefixes and anything inside them, per family.
	var site6, site4 []*api.Prefix
	for _, p := range in.cfg.Site.Prefixes {
		e := prefixRange(p, p.Bits(), p.Addr().BitLen())
		if p.Addr().Is4() {
			site4 = append(site4, e)
		} else {
			site6 = append(site6, e)
		}
	}
	addPrefixSet := func(name string, ps []*api.Prefix) bool {
		if len(ps) == 0 {
			return false // GoBGP cannot tell an empty set's family; leave it out
		}
		add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: name, Prefixes: ps})
		return true
	}
	haveSite6 := addPrefixSet(setSiteV6, site6)
	haveSite4 := addPrefixSet(setSiteV4, site4)
	addPrefixSet(setDefaultV6, []*api.Prefix{prefixRange(netip.MustParsePrefix("::/0"), 0, 0)})
	addPrefixSet(setDefaultV4, []*api.Prefix{prefixRange(netip.MustParsePrefix("0.0.0.0/0"), 0, 0)})
	var bogon6, bogon4 []*api.Prefix
	for _, p := range in.cfg.Filters.BogonPrefixes {
		e := prefixRange(p, p.Bits(), p.Addr().BitLen())
		if p.Addr().Is4() {
			bogon4 = append(bogon4, e)
		} else {
			bogon6 = append(bogon6, e)
		}
	}
	haveBogon6 := addPrefixSet(setBogonV6, bogon6)
	haveBogon4 := addPrefixSet(setBogonV4, bogon4)
	addPrefixSet(setGlobalV6, []*api.Prefix{prefixRange(globalUnicastV6, globalUnicastV6.Bits(), 128)})
	addPrefixSet(setTooLongV6, []*api.Prefix{prefixRange(netip.MustParsePrefix("::/0"), maxLenV6+1, 128)})
	addPrefixSet(setTooLongV4, []*api.Prefix{prefixRange(netip.MustParsePrefix("0.0.0.0/0"), maxLenV4+1, 32)})

	haveBogonASNs := len(in.cfg.Filters.BogonASNs) > 0
	if haveBogonASNs {
		var res []string
		for _, r := range in.cfg.Filters.BogonASNs {
			res = append(res, "_"+asnRangeRegexp(r.First, r.Last)+"_")
		}
		add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_AS_PATH, Name: setBogonASNs, List: res})
	}
	add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_COMMUNITY, Name: setGracefulSD, List: []string{"^65535:0$"}})

	imp := &api.Policy{Name: policyImport}
	exp := &api.Policy{Name: policyExport}
	// The global import policy also filters our own locally originated
	// paths: accept them first, or nothing is ever announced.
	imp.Statements = append(imp.Statements, &api.Statement{
		Name:       "mh-import-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	})

	for _, u := range in.cfg.Uplinks {
		var nbrs []string
		for _, s := range u.BGP.Sessions() {
			nbrs = append(nbrs, netip.PrefixFrom(s.Neighbor, s.Neighbor.BitLen()).String())
		}
		nset := neighborSetName(u.Name)
		add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: nset, List: nbrs})
		add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_AS_PATH, Name: firstASSetName(u.Name), List: []string{fmt.Sprintf("^%d_", u.BGP.PeerASN)}})

		st := func(suffix string, c *api.Conditions, a *api.Actions) {
			c.NeighborSet = &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset}
			imp.Statements = append(imp.Statements, &api.Statement{Name: "mh-import-" + u.Name + "-" + suffix, Conditions: c, Actions: a})
		}
		reject := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}
		accept := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
		// RFC 8326 section 4 asks for LOCAL_PREF 0 on GRACEFUL_SHUTDOWN
		// routes. GoBGP's policy API treats 0 as "no action", so we set
		// gracefulShutdownLocalPref, the lowest value it can set: the route
		// still loses to every normal route.
		acceptGshut := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, LocalPref: &api.LocalPrefAction{Value: gracefulShutdownLocalPref}}
		gshut := &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setGracefulSD}

		if u.BGP.Import == config.ImportNone {
			st("none", &api.Conditions{}, reject)
			continue
		}
		// Checks on every accepted route, default included.
		if haveBogonASNs {
			st("bogon-asn", &api.Conditions{AsPathSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setBogonASNs}}, reject)
		}
		st("first-as", &api.Conditions{AsPathSet: &api.MatchSet{Type: api.MatchSet_TYPE_INVERT, Name: firstASSetName(u.Name)}}, reject)
		if haveSite6 {
			st("own-v6", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setSiteV6}}, reject)
		}
		if haveSite4 {
			st("own-v4", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setSiteV4}}, reject)
		}
		for _, fam := range []struct{ name, set string }{{"v6", setDefaultV6}, {"v4", setDefaultV4}} {
			st("default-"+fam.name+"-gshut", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: fam.set}, CommunitySet: gshut}, acceptGshut)
			st("default-"+fam.name, &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: fam.set}}, accept)
		}
		if u.BGP.Import == config.ImportDefault {
			st("other", &api.Conditions{}, reject)
			continue
		}
		// Import full.
		st("not-global-v6", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_INVERT, Name: setGlobalV6}, AfiSafiIn: []*api.Family{familyV6}}, reject)
		if haveBogon6 {
			st("bogon-v6", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setBogonV6}}, reject)
		}
		if haveBogon4 {
			st("bogon-v4", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setBogonV4}}, reject)
		}
		st("too-long-v6", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setTooLongV6}}, reject)
		st("too-long-v4", &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setTooLongV4}}, reject)
		fullGshut, fullAccept := fullImportActions(in, u.Name) // inside.go
		st("gshut", &api.Conditions{CommunitySet: gshut}, fullGshut)
		st("accept", &api.Conditions{}, fullAccept)
	}

	addISPExport(in, add, exp)
	// Internal routers: our own default route, with a LOCAL_PREF that says
	// how healthy this edge's uplinks are (and, with ibgp.advertise: full,
	// the core peers also the full-table routes: addInsideExport). The
	// default carries its LOCAL_PREF as a mark (exportmarks.go), so a new
	// preference is a new path, not a new policy.
	if len(in.cfg.IBGP.Peers) > 0 {
		var nbrs []string
		for _, p := range in.cfg.IBGP.Peers {
			nbrs = append(nbrs, netip.PrefixFrom(p.Neighbor, p.Neighbor.BitLen()).String())
		}
		add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: setIBGP, List: nbrs})
		for _, lp := range in.export.defaultLPs {
			mark := fmt.Sprintf("mh-mark-default-%d", lp)
			add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_LARGE_COMMUNITY, Name: mark, List: []string{markCommunity(in.cfg.Node.ASN, defaultMarkLocal1, lp)}})
			for _, fam := range []struct{ name, set string }{{"v6", setDefaultV6}, {"v4", setDefaultV4}} {
				exp.Statements = append(exp.Statements, &api.Statement{
					Name: fmt.Sprintf("mh-export-internal-default-%s-lp%d", fam.name, lp),
					Conditions: &api.Conditions{
						RouteType:         api.Conditions_ROUTE_TYPE_LOCAL,
						NeighborSet:       &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setIBGP},
						PrefixSet:         &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: fam.set},
						LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: mark},
					},
					Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, LocalPref: &api.LocalPrefAction{Value: lp},
						LargeCommunity: stripMarks(in.cfg.Node.ASN)},
				})
			}
		}
	}
	addInsideExport(in, add, exp)          // inside.go
	addEdgePolicies(in.cfg, add, imp, exp) // edgepeers.go
	req.Policies = []*api.Policy{imp, exp}
	return req
}

// addISPExport adds the export to the ISPs: per mark, a statement that
// gives the uplink's sessions the mark's attributes, then per uplink and
// family one that accepts a site prefix carrying any of the uplink's marks
// and strips them all (exportmarks.go). Everything else hits the default
// REJECT: no transit. Marks of an uplink no longer configured are left
// out: it has no session to export to.
func addISPExport(in policyInput, add func(*api.DefinedSet), exp *api.Policy) {
	asn := in.cfg.Node.ASN
	var site6, site4 []*api.Prefix
	for _, p := range sortedPrefixes(sitePrefixSet(in)) {
		e := prefixRange(p, p.Bits(), p.Bits())
		if p.Addr().Is4() {
			site4 = append(site4, e)
		} else {
			site6 = append(site6, e)
		}
	}
	haveSite := map[string]bool{}
	for _, fam := range []struct {
		name string
		ps   []*api.Prefix
	}{{"v6", site6}, {"v4", site4}} {
		if len(fam.ps) > 0 {
			add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: setExportSite + fam.name, Prefixes: fam.ps})
			haveSite[fam.name] = true
		}
	}
	for _, u := range in.cfg.Uplinks {
		nset := neighborSetName(u.Name)
		var all []string
		for _, mk := range in.export.marks {
			if mk.uplink != u.Name {
				continue
			}
			c := markCommunity(asn, markLocal1, mk.id)
			all = append(all, c)
			add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_LARGE_COMMUNITY, Name: markSetName(mk.id), List: []string{c}})
			exp.Statements = append(exp.Statements, &api.Statement{
				Name: fmt.Sprintf("mh-export-%s-mark-%d", u.Name, mk.id),
				Conditions: &api.Conditions{
					RouteType:         api.Conditions_ROUTE_TYPE_LOCAL,
					NeighborSet:       &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
					LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: markSetName(mk.id)},
				},
				Actions: attributeActions(asn, mk.attrs),
			})
		}
		if len(all) == 0 {
			continue
		}
		add(&api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_LARGE_COMMUNITY, Name: uplinkMarksSetName(u.Name), List: all})
		for _, fam := range []string{"v6", "v4"} {
			if !haveSite[fam] {
				continue
			}
			exp.Statements = append(exp.Statements, &api.Statement{
				Name: "mh-export-" + u.Name + "-" + fam,
				Conditions: &api.Conditions{
					RouteType:         api.Conditions_ROUTE_TYPE_LOCAL,
					NeighborSet:       &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
					PrefixSet:         &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: setExportSite + fam},
					LargeCommunitySet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: uplinkMarksSetName(u.Name)},
				},
				Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT, LargeCommunity: stripMarks(asn)},
			})
		}
	}
}

// sitePrefixSet is every prefix the export may send: the configured site
// prefixes and those still originated (a reload that removes one keeps it
// in the set until its withdrawal went out).
func sitePrefixSet(in policyInput) map[netip.Prefix]bool {
	set := map[netip.Prefix]bool{}
	for _, p := range in.cfg.Site.Prefixes {
		set[p] = true
	}
	for _, p := range in.export.sitePfx {
		set[p] = true
	}
	return set
}

// attributeActions are the modifications, without a route action, that
// give a route a's attributes.
func attributeActions(asn uint32, a routing.Announcement) *api.Actions {
	actions := &api.Actions{}
	if a.Prepend > 0 {
		actions.AsPrepend = &api.AsPrependAction{Asn: asn, Repeat: uint32(a.Prepend)}
	}
	comms := slices.Clone(a.Communities)
	if a.GracefulShutdown && !slices.Contains(comms, routing.CommunityGracefulShutdown) {
		comms = append(comms, routing.CommunityGracefulShutdown)
	}
	if len(comms) > 0 {
		var list []string
		for _, c := range comms {
			list = append(list, c.String())
		}
		actions.Community = &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: list}
	}
	if len(a.LargeCommunities) > 0 {
		var list []string
		for _, c := range a.LargeCommunities {
			list = append(list, c.String())
		}
		actions.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: list}
	}
	if a.MED != nil {
		actions.Med = &api.MedAction{Type: api.MedAction_TYPE_REPLACE, Value: int64(*a.MED)}
	}
	return actions
}

// stripMarks removes every export mark (exportmarks.go) from a route.
func stripMarks(asn uint32) *api.CommunityAction {
	return &api.CommunityAction{Type: api.CommunityAction_TYPE_REMOVE, Communities: []string{anyMarkRegexp(asn)}}
}

// gracefulShutdownLocalPref is the LOCAL_PREF given to routes an ISP tags
// with GRACEFUL_SHUTDOWN (see the comment where it is used).
const gracefulShutdownLocalPref = 1

var (
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
)

func prefixRange(p netip.Prefix, minLen, maxLen int) *api.Prefix {
	return &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(minLen), MaskLengthMax: uint32(maxLen)}
}

package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
)

// Defaults of the ibgp section.
const (
	DefaultLocalPrefUp       = 200
	DefaultLocalPrefDegraded = 100
)

// MinInsideLocalPref is the lowest ibgp.local_pref_degraded that
// ibgp.advertise: full accepts. Below it sit the edge's own values for
// learned routes (bgp): 1 for a route of an uplink that is not usable,
// which export keeps from the core, and 2 for a usable route an ISP tagged
// GRACEFUL_SHUTDOWN. A usable route at 1 could tie with a marked one and
// lose on a tie-breaker, leaving the core without a destination that has a
// usable path.
const MinInsideLocalPref = 3

// ibgp checks the internal routers that receive the site's default.
// An internal router may not be an ISP's neighbor too: the speaker keys
// sessions by neighbor address, so start would fail and a reload would
// silently replace the uplink's session.
func (c *checker) ibgp(r rawIBGP, node Node, global BGPGlobal, uplinks []Uplink) IBGP {
	out := IBGP{LocalPrefUp: DefaultLocalPrefUp, LocalPrefDegraded: DefaultLocalPrefDegraded}
	out.LocalPrefUp = inRange(c, "ibgp.local_pref_up", r.LocalPrefUp, 1, math.MaxUint32, out.LocalPrefUp)
	out.LocalPrefDegraded = inRange(c, "ibgp.local_pref_degraded", r.LocalPrefDegraded, 1, math.MaxUint32, out.LocalPrefDegraded)
	if out.LocalPrefDegraded >= out.LocalPrefUp {
		c.add("ibgp.local_pref_degraded", "%d is not below local_pref_up %d; internal routers would not prefer a healthy edge", out.LocalPrefDegraded, out.LocalPrefUp)
	}
	seen := map[netip.Addr]int{}
	uplinkOf := map[netip.Addr]string{}
	for i, u := range uplinks {
		for _, s := range u.BGP.Sessions() {
			if s.Neighbor.IsValid() {
				uplinkOf[s.Neighbor] = fmt.Sprintf("uplinks[%d] (%s)", i, u.Name)
			}
		}
	}
	n := c.limit("ibgp.peers", len(r.Peers), MaxIBGPPeers, "peer with route reflectors instead of every router")
	for i, rp := range r.Peers[:n] {
		base := fmt.Sprintf("ibgp.peers[%d]", i)
		p := IBGPPeer{
			Neighbor:     c.addr(base+".neighbor", rp.Neighbor, true),
			LocalAddress: c.addr(base+".local_address", rp.LocalAddress, false),
			Password:     NewSecret(rp.Password),
		}
		// iBGP peers take no keepalive key; the speaker derives it.
		p.HoldTime, _, p.ConnectRetry = c.sessionTimers(base, rp.HoldTime, "", rp.ConnectRetry)
		if j, dup := seen[p.Neighbor]; dup && p.Neighbor.IsValid() {
			c.add(base+".neighbor", "%s is already ibgp.peers[%d]", p.Neighbor, j)
		}
		if u, dup := uplinkOf[p.Neighbor]; dup {
			c.add(base+".neighbor", "%s is already the bgp neighbor of %s; an internal router needs an address of its own", p.Neighbor, u)
		}
		seen[p.Neighbor] = i
		p.Role, p.Interface = c.ibgpRole(base, rp, node)
		if len(rp.Password) > maxMD5KeyLen {
			c.add(base+".password", "longer than the %d bytes Linux accepts for a TCP-MD5 key", maxMD5KeyLen)
		}
		out.Peers = append(out.Peers, p)
	}
	// The site state travels as IPv6 host routes (docs/deployment.md).
	edges := out.EdgePeers()
	if len(edges) > 0 && !slices.ContainsFunc(edges, func(p IBGPPeer) bool { return p.Neighbor.Is6() }) {
		c.add("ibgp.peers", "no peer with role edge has an IPv6 neighbor; the edges exchange uplink state over IPv6 sessions, so add one")
	}
	// Every edge dials every other edge; one that only dials out refuses
	// the other's connection, and two such edges never meet.
	if len(edges) > 0 && global.ListenPort < 0 {
		c.add("bgp.listen_port", "-1 (only dial out) with ibgp peers of role edge; set 179 so that the other edges can connect")
	}
	out.Advertise = c.ibgpAdvertise(r.Advertise, out.Peers, uplinks)
	if out.Advertise == AdvertiseFull && out.LocalPrefDegraded < MinInsideLocalPref {
		c.add("ibgp.local_pref_degraded", "%d with advertise: full; the edge keeps 1 and 2 for routes of unusable uplinks and GRACEFUL_SHUTDOWN routes, so set %d or more", out.LocalPrefDegraded, MinInsideLocalPref)
	}
	return out
}

// ibgpAdvertise checks ibgp.advertise. full needs something to send (an
// uplink with import: full) and someone to send it to (a core peer): the
// full routes never go to edge peers, which advertise their own best
// routes to the core themselves (docs/deployment.md).
func (c *checker) ibgpAdvertise(v string, peers []IBGPPeer, uplinks []Uplink) IBGPAdvertise {
	switch IBGPAdvertise(v) {
	case "", AdvertiseDefault:
		return AdvertiseDefault
	case AdvertiseFull:
	default:
		c.add("ibgp.advertise", "%q is not a choice; use default (only the originated default routes) or full (also the routes of import: full uplinks)", v)
		return AdvertiseDefault
	}
	if !slices.ContainsFunc(uplinks, func(u Uplink) bool { return u.BGP.Import == ImportFull }) {
		c.add("ibgp.advertise", "full, but no uplink has bgp.import: full, so there is nothing to advertise; set import: full on an uplink or advertise: default")
	}
	if !slices.ContainsFunc(peers, func(p IBGPPeer) bool { return p.Role == RoleCore }) {
		c.add("ibgp.advertise", "full, but ibgp.peers has no peer with role core; the full routes go only to core peers, so add one or set advertise: default")
	}
	return AdvertiseFull
}

// ibgpRole checks a peer's role and the keys only an edge peer takes.
func (c *checker) ibgpRole(base string, rp rawIBGPPeer, node Node) (IBGPRole, string) {
	role := IBGPRole(rp.Role)
	switch role {
	case "":
		role = RoleCore
	case RoleCore, RoleEdge:
	default:
		c.add(base+".role", "%q is not a role; use core (an internal router that receives our default) or edge (another edge router of this site running multihomed)", rp.Role)
		return RoleCore, ""
	}
	if rp.ASN != nil && *rp.ASN != int64(node.ASN) {
		c.add(base+".asn", "%d is not node.asn %d; an internal peer is in the site's own AS (remove the key or set %d)", *rp.ASN, node.ASN, node.ASN)
	}
	if role == RoleCore {
		if rp.Interface != "" {
			c.add(base+".interface", "only a peer with role edge takes an interface; remove it or set role: edge")
		}
		return role, ""
	}
	switch {
	case rp.Interface == "":
		c.add(base+".interface", "missing; an edge peer needs the network device it is reachable on (its default becomes our last-resort egress there), such as eth2")
	case !ifaceNameRe.MatchString(rp.Interface):
		c.add(base+".interface", "%q is not a Linux interface name (1-15 characters, no spaces or slashes)", rp.Interface)
	}
	return role, rp.Interface
}

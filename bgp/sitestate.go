package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/routing"
)

// The site state, version 1 (docs/deployment.md, "Site state on the
// wire"). Each edge originates, to its edge peers only, one IPv6 host
// route per uplink:
//
//	fd6d:6801:RRRR:RRRR::IIII/128
//
// R is the edge's router ID (IPv4, 32 bits), I the uplink's place in its
// configuration. The route carries large communities whose global
// administrator is the site's ASN:
//
//	ASN:1:S          S is the uplink's state (stateCodes)
//	ASN:256+k:C      C is the k-th group of 4 bytes of the uplink's name
//
// The routes never leave the site (export to edge peers only, never to a
// core router or an ISP) and are never installed in a kernel table. When
// the session ends they are gone (after graceful restart's stale time,
// when the other edge's daemon restarts): learned state ages out with
// the session. A future version takes another /32 and another state
// Local1, so edges of two versions ignore each other's routes instead of
// misreading them.
var SiteStateRange = netip.MustParsePrefix("fd6d:6801::/32")

// Local1 values of the site-state large communities.
const (
	lcState    = 1
	lcNameBase = 256
	// lcNameChunks groups of 4 bytes hold the longest uplink name (31).
	lcNameChunks = 8
)

// stateCodes numbers the uplink states on the wire. 0 is unknown, and so
// is a code this version does not know.
var stateCodes = []string{"unknown", "up", "degraded", "down", "drained", "forced-down"}

// stateRoutePrefix is the site-state route of the uplink at index of the
// edge with routerID.
func stateRoutePrefix(routerID netip.Addr, index int) netip.Prefix {
	b := SiteStateRange.Addr().As16()
	r := routerID.As4()
	copy(b[4:8], r[:])
	b[14], b[15] = byte(index>>8), byte(index)
	return netip.PrefixFrom(netip.AddrFrom16(b), 128)
}

// encodeUplinkState returns the large communities that carry st.
func encodeUplinkState(asn uint32, st routing.UplinkState) []routing.LargeCommunity {
	code := slices.Index(stateCodes, st.State)
	out := []routing.LargeCommunity{{Global: asn, Local1: lcState, Local2: uint32(max(code, 0))}}
	name := []byte(st.Uplink)
	for k := 0; k*4 < len(name) && k < lcNameChunks; k++ {
		var chunk [4]byte
		copy(chunk[:], name[k*4:])
		out = append(out, routing.LargeCommunity{Global: asn, Local1: lcNameBase + uint32(k), Local2: uint32(chunk[0])<<24 | uint32(chunk[1])<<16 | uint32(chunk[2])<<8 | uint32(chunk[3])})
	}
	return out
}

// decodeUplinkState reads a site-state route: the sending edge's router
// ID and the uplink's name and state. Communities of other ASNs are
// ignored; a route outside SiteStateRange, or without a name, is an error.
// The state is unknown unless exactly one state community of a known code
// is present.
func decodeUplinkState(asn uint32, p netip.Prefix, lcs []routing.LargeCommunity) (netip.Addr, routing.UplinkState, error) {
	if !p.Addr().Is6() || p.Bits() != 128 || !SiteStateRange.Contains(p.Addr()) {
		return netip.Addr{}, routing.UplinkState{}, fmt.Errorf("%s is not a site-state route (a /128 in %s)", p, SiteStateRange)
	}
	b := p.Addr().As16()
	edge := netip.AddrFrom4([4]byte(b[4:8]))
	var st routing.UplinkState
	var name [lcNameChunks * 4]byte
	codes := 0
	for _, c := range lcs {
		switch {
		case c.Global != asn:
		case c.Local1 == lcState:
			codes++
			if int(c.Local2) < len(stateCodes) {
				st.State = stateCodes[c.Local2]
			}
		case c.Local1 >= lcNameBase && c.Local1 < lcNameBase+lcNameChunks:
			k := (c.Local1 - lcNameBase) * 4
			name[k], name[k+1], name[k+2], name[k+3] = byte(c.Local2>>24), byte(c.Local2>>16), byte(c.Local2>>8), byte(c.Local2)
		}
	}
	// A code this version does not know, or more than one: unknown,
	// which no other edge counts as usable.
	if codes != 1 || st.State == "" {
		st.State = stateCodes[0]
	}
	n := slices.Index(name[:], 0)
	if n < 0 {
		n = len(name)
	}
	st.Uplink = string(name[:n])
	if st.Uplink == "" {
		return netip.Addr{}, routing.UplinkState{}, fmt.Errorf("%s carries no uplink name", p)
	}
	return edge, st, nil
}

// siteOrigin is what SetSiteState originated: the path and state per
// uplink index. Guarded by Speaker.opMu.
type siteOrigin struct {
	sent map[int]sentState
}

type sentState struct {
	st routing.UplinkState
}

// SetSiteState makes the speaker tell its edge peers (ibgp.peers with
// role edge) the state of each of its uplinks, in configuration order;
// without edge peers it originates nothing. Idempotent: only a changed
// uplink's route is sent again.
func (s *Speaker) SetSiteState(ctx context.Context, states []routing.UplinkState) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: speaker not started")
	}
	if s.site.sent == nil {
		s.site.sent = map[int]sentState{}
	}
	if len(s.cfg.IBGP.EdgePeers()) == 0 {
		states = nil
	}
	var errs []error
	for i, st := range states {
		if old, ok := s.site.sent[i]; ok && old.st == st {
			continue
		}
		// Re-adding the same prefix replaces the path (GoBGP keys local
		// paths by prefix).
		if err := s.originate(stateRoutePrefix(s.cfg.Node.RouterID, i), encodeUplinkState(s.cfg.Node.ASN, st)); err != nil {
			errs = append(errs, err)
			continue
		}
		s.site.sent[i] = sentState{st: st}
	}
	for i, old := range s.site.sent {
		if i < len(states) {
			continue
		}
		if err := s.withdrawOrigin(stateRoutePrefix(s.cfg.Node.RouterID, i)); err != nil {
			errs = append(errs, fmt.Errorf("bgp: withdraw site state of uplink %s: %w", old.st.Uplink, err))
			continue
		}
		delete(s.site.sent, i)
	}
	return errors.Join(errs...)
}

// SiteView returns what the edge peers sent that passed import policy:
// their uplinks' states and their defaults. A route that does not decode
// is left out (import policy admits only the site-state range).
func (s *Speaker) SiteView() (routing.SiteView, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return routing.SiteView{}, errors.New("bgp: speaker not started")
	}
	edges := map[netip.Addr]bool{}
	for _, p := range s.cfg.IBGP.EdgePeers() {
		edges[p.Neighbor] = true
	}
	var v routing.SiteView
	if len(edges) == 0 {
		return v, nil
	}
	// Look up only the defaults and the state range: the table may hold
	// an ISP's full table, and this runs on every controller pass.
	lookups := map[bgp.Family][]*apiutil.LookupPrefix{
		bgp.RF_IPv6_UC: {{Prefix: "::/0", LookupOption: apiutil.LOOKUP_EXACT}, {Prefix: SiteStateRange.String(), LookupOption: apiutil.LOOKUP_LONGER}},
		bgp.RF_IPv4_UC: {{Prefix: "0.0.0.0/0", LookupOption: apiutil.LOOKUP_EXACT}},
	}
	for _, fam := range []bgp.Family{bgp.RF_IPv6_UC, bgp.RF_IPv4_UC} {
		err := s.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam, Prefixes: lookups[fam]}, func(nlri bgp.NLRI, paths []*apiutil.Path) {
			p, err := netip.ParsePrefix(nlri.String())
			if err != nil {
				return
			}
			for _, path := range paths {
				if path.Filtered || !edges[path.PeerAddress] {
					continue
				}
				if p.Bits() == 0 {
					v.Defaults = append(v.Defaults, routing.RemoteDefault{Neighbor: path.PeerAddress, Dst: p, NextHop: nextHop(path)})
					continue
				}
				edge, st, err := decodeUplinkState(s.cfg.Node.ASN, p, largeCommunities(path))
				if err != nil {
					continue
				}
				v.Uplinks = append(v.Uplinks, routing.RemoteUplink{Edge: edge, Neighbor: path.PeerAddress, Uplink: st.Uplink, State: st.State,
					Since: time.Unix(path.Age, 0), Stale: path.Stale})
			}
		})
		if err != nil {
			return routing.SiteView{}, fmt.Errorf("bgp: list %s routes: %w", fam, err)
		}
	}
	slices.SortFunc(v.Uplinks, func(a, b routing.RemoteUplink) int {
		if c := a.Edge.Compare(b.Edge); c != 0 {
			return c
		}
		if c := a.Neighbor.Compare(b.Neighbor); c != 0 {
			return c
		}
		return strings.Compare(a.Uplink, b.Uplink)
	})
	slices.SortFunc(v.Defaults, func(a, b routing.RemoteDefault) int {
		if c := a.Neighbor.Compare(b.Neighbor); c != 0 {
			return c
		}
		return cmp.Compare(b.Dst.Addr().BitLen(), a.Dst.Addr().BitLen()) // IPv6 first
	})
	return v, nil
}

func nextHop(path *apiutil.Path) netip.Addr {
	for _, a := range path.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeMpReachNLRI:
			return a.Nexthop
		case *bgp.PathAttributeNextHop:
			return a.Value
		}
	}
	return netip.Addr{}
}

func largeCommunities(path *apiutil.Path) []routing.LargeCommunity {
	var out []routing.LargeCommunity
	for _, a := range path.Attrs {
		if lc, ok := a.(*bgp.PathAttributeLargeCommunities); ok {
			for _, v := range lc.Values {
				out = append(out, routing.LargeCommunity{Global: v.ASN, Local1: v.LocalData1, Local2: v.LocalData2})
			}
		}
	}
	return out
}

// ibgpMaxPrefixes is what an internal peer may send per family before its
// session is closed. An edge sends one default and, over IPv6, one state
// route per uplink: anything beyond that is a misconfigured or runaway
// peer. A core router's routes are all rejected, but must not fill memory.
func ibgpMaxPrefixes(p config.IBGPPeer) uint32 {
	if p.Role == config.RoleEdge {
		return config.MaxUplinks + 1
	}
	return DefaultIBGPMaxPrefixes
}

package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/multihomed/multihomed/internal/netns"
)

// Two-edge addressing (docs/deployment.md). The site's inside links are
// carved from the site prefixes; the ISP links are the single-edge lab's,
// ISP-A's on edge-1 and ISP-B's on edge-2.
var (
	// Core <-> LAN host: the core takes the single-edge lab's edge LAN
	// addresses, so the LAN host is unchanged.
	CoreLANAddr6 = EdgeLANAddr6
	CoreLANAddr4 = EdgeLANAddr4
	// Edge-1 <-> core.
	Edge1CoreAddr6 = netip.MustParseAddr("2001:db8:face:11::1")
	Core1Addr6     = netip.MustParseAddr("2001:db8:face:11::2")
	Edge1CoreAddr4 = netip.MustParseAddr("198.51.100.33")
	Core1Addr4     = netip.MustParseAddr("198.51.100.34")
	// Edge-2 <-> core.
	Edge2CoreAddr6 = netip.MustParseAddr("2001:db8:face:12::1")
	Core2Addr6     = netip.MustParseAddr("2001:db8:face:12::2")
	Edge2CoreAddr4 = netip.MustParseAddr("198.51.100.37")
	Core2Addr4     = netip.MustParseAddr("198.51.100.38")
	// Edge-1 <-> edge-2 (the edges' iBGP session and last-resort egress).
	Edge1PeerAddr6 = netip.MustParseAddr("2001:db8:face:13::1")
	Edge2PeerAddr6 = netip.MustParseAddr("2001:db8:face:13::2")
	Edge1PeerAddr4 = netip.MustParseAddr("198.51.100.41")
	Edge2PeerAddr4 = netip.MustParseAddr("198.51.100.42")

	// LANNet6 and LANNet4 are the LAN host's subnets, which the edges
	// route to the core.
	LANNet6 = netip.MustParsePrefix("2001:db8:face:1::/64")
	LANNet4 = netip.MustParsePrefix("198.51.100.0/27")
)

// TwoEdge is the two-edge lab: edge-1 (namespace Lab.Edge) with ISP-A on
// FRR, edge-2 with ISP-B on BIRD, a core router (FRR) peering iBGP with
// both and routing for the LAN host, the transit and the internet host as
// in the single-edge lab. The embedded Lab's fault and scenario helpers
// act on edge-1 and the ISPs (CutISPA cuts edge-1's link to ISP-A;
// EgressDevice is edge-1's).
type TwoEdge struct {
	*Lab
	// Edge2 and Core are the second edge's and the core router's
	// namespaces (the core's FRR is Lab.CoreRouter).
	Edge2, Core *netns.NS
}

// Namespace names of the two-edge lab's extra nodes: "mh<ID>f" and
// "mh<ID>c".
const (
	edge2Short = "f"
	coreShort  = "c"
)

// UpTwoEdge builds the two-edge lab. On error everything built so far is
// removed. Only opts.ID and opts.ISPAPassword/ISPBPassword are used.
func UpTwoEdge(ctx context.Context, opts Options) (l *TwoEdge, err error) {
	if opts.ID == "" {
		opts.ID = netns.UniqueID()
	}
	l = &TwoEdge{Lab: &Lab{}}
	defer closeOnError(l, &err)
	if err := l.newNamespaces(ctx, opts.ID, []nsNode{
		{&l.Edge, nodeShort["edge"]}, {&l.Edge2, edge2Short}, {&l.Core, coreShort}, {&l.ISPA, nodeShort["isp-a"]},
		{&l.ISPB, nodeShort["isp-b"]}, {&l.Transit, nodeShort["transit"]}, {&l.Inet, nodeShort["inet"]}, {&l.LAN, nodeShort["lan"]},
	}); err != nil {
		return nil, err
	}
	if err := connect(ctx, []link{
		{linkEnd{l.Edge, "eth-a", []netip.Addr{EdgeAAddr6, EdgeAAddr4}}, linkEnd{l.ISPA, "eth-edge", []netip.Addr{ISPAAddr6, ISPAAddr4}}},
		{linkEnd{l.Edge2, "eth-b", []netip.Addr{EdgeBAddr6, EdgeBAddr4}}, linkEnd{l.ISPB, "eth-edge", []netip.Addr{ISPBAddr6, ISPBAddr4}}},
		{linkEnd{l.ISPA, "eth-tr", []netip.Addr{ISPATrAddr6, ISPATrAddr4}}, linkEnd{l.Transit, "eth-a", []netip.Addr{TransitAAddr6, TransitAAddr4}}},
		{linkEnd{l.ISPB, "eth-tr", []netip.Addr{ISPBTrAddr6, ISPBTrAddr4}}, linkEnd{l.Transit, "eth-b", []netip.Addr{TransitBAddr6, TransitBAddr4}}},
		{linkEnd{l.Transit, "eth-inet", []netip.Addr{TransitInetAddr6, TransitInetAddr4}}, linkEnd{l.Inet, "eth0", []netip.Addr{InetAddr6, InetAddr4}}},
		{linkEnd{l.Edge, "eth-core", []netip.Addr{Edge1CoreAddr6, Edge1CoreAddr4}}, linkEnd{l.Core, "eth-e1", []netip.Addr{Core1Addr6, Core1Addr4}}},
		{linkEnd{l.Edge2, "eth-core", []netip.Addr{Edge2CoreAddr6, Edge2CoreAddr4}}, linkEnd{l.Core, "eth-e2", []netip.Addr{Core2Addr6, Core2Addr4}}},
		{linkEnd{l.Edge, "eth-peer", []netip.Addr{Edge1PeerAddr6, Edge1PeerAddr4}}, linkEnd{l.Edge2, "eth-peer", []netip.Addr{Edge2PeerAddr6, Edge2PeerAddr4}}},
		{linkEnd{l.Core, "eth-lan", []netip.Addr{CoreLANAddr6, CoreLANAddr4}}, linkEnd{l.LAN, "eth0", []netip.Addr{LANAddr6, LANAddr4}}},
	}, linkBits); err != nil {
		return nil, err
	}
	// Static routes: hosts to their router, each edge to the LAN via the
	// core. The core's defaults come from the edges over iBGP.
	if err := addRoutes(ctx, []staticRoute{
		{l.Inet, "default", TransitInetAddr6, "eth0"}, {l.Inet, "default", TransitInetAddr4, "eth0"},
		{l.LAN, "default", CoreLANAddr6, "eth0"}, {l.LAN, "default", CoreLANAddr4, "eth0"},
		{l.Edge, LANNet6.String(), Core1Addr6, "eth-core"}, {l.Edge, LANNet4.String(), Core1Addr4, "eth-core"},
		{l.Edge2, LANNet6.String(), Core2Addr6, "eth-core"}, {l.Edge2, LANNet4.String(), Core2Addr4, "eth-core"},
	}); err != nil {
		return nil, err
	}

	if err := l.startFRRTransit(ctx); err != nil {
		return nil, err
	}
	if err := l.startFRRISPA(ctx, Options{ISPAPassword: opts.ISPAPassword}); err != nil {
		return nil, err
	}
	if err := l.startBIRDISPB(ctx, opts.ISPBPassword); err != nil {
		return nil, err
	}
	if l.CoreRouter, err = startFRR(ctx, l.Core, coreFRRConf()); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.CoreRouter.Close)
	return l, nil
}

func linkBits(a netip.Addr) int {
	switch {
	case a.Is6():
		return 64
	case LANNet4.Contains(a):
		return LANNet4.Bits()
	case a.Is4() && netip.MustParsePrefix("198.51.100.0/24").Contains(a):
		return 30 // the site's inside point-to-point links
	}
	return 24
}

// coreFRRConf is the core router's FRR configuration: iBGP with both
// edges, nothing originated; it installs the one default with the highest
// LOCAL_PREF (then, as BGP breaks ties, the lower router ID: edge-1).
func coreFRRConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n timers bgp 3 9\n", ASNEdge, Core1Addr4)
	nbrs := []netip.Addr{Edge1CoreAddr6, Edge2CoreAddr6, Edge1CoreAddr4, Edge2CoreAddr4}
	for _, n := range nbrs {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 2\n", n, ASNEdge, n)
	}
	for _, fam := range []string{"ipv6", "ipv4"} {
		// One path: outbound follows the best edge, so the tests see
		// traffic that reaches edge-1 after its ISP failed (FRR would
		// otherwise spread it over both edges at equal LOCAL_PREF).
		fmt.Fprintf(&b, " address-family %s unicast\n  maximum-paths ibgp 1\n", fam)
		for _, n := range nbrs {
			if (fam == "ipv4") == n.Is4() {
				fmt.Fprintf(&b, "  neighbor %s activate\n", n)
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	return b.String()
}

// Edge1Config is edge-1's multihomed configuration: ISP-A, probed with
// the profile; the core and edge-2 as iBGP peers.
func Edge1Config(profile, stateDir string) string {
	return twoEdgeConfig(Edge1CoreAddr4, "isp-a", "eth-a", ASNISPA, ISPAAddr6, EdgeAAddr6, ISPAAddr4, EdgeAAddr4, "",
		profile, stateDir, Core1Addr6, Edge1CoreAddr6, Core1Addr4, Edge1CoreAddr4, Edge2PeerAddr6, Edge1PeerAddr6, Edge2PeerAddr4, Edge1PeerAddr4)
}

// Edge2Config is edge-2's: ISP-B, one prepend longer (inbound prefers
// ISP-A while it is healthy, so every fault on ISP-A moves inbound).
func Edge2Config(profile, stateDir string) string {
	return twoEdgeConfig(Edge2CoreAddr4, "isp-b", "eth-b", ASNISPB, ISPBAddr6, EdgeBAddr6, ISPBAddr4, EdgeBAddr4, "      prepend: 1\n",
		profile, stateDir, Core2Addr6, Edge2CoreAddr6, Core2Addr4, Edge2CoreAddr4, Edge1PeerAddr6, Edge2PeerAddr6, Edge1PeerAddr4, Edge2PeerAddr4)
}

func twoEdgeConfig(routerID netip.Addr, uplink, dev string, peerASN int, nbr6, local6, nbr4, local4 netip.Addr, bgpExtra, profile, stateDir string,
	core6, coreLocal6, core4, coreLocal4, peer6, peerLocal6, peer4, peerLocal4 netip.Addr) string {
	return edgeHead("multihomed two-edge lab", routerID) + "bgp:\n  listen_port: 179\nuplinks:\n" +
		uplinkBGP(uplink, dev, peerASN, nbr6, local6, nbr4, local4, bgpExtra+HealthBlock(profile)) +
		fmt.Sprintf(`ibgp:
  peers:
    - {neighbor: "%s", local_address: "%s", hold_time: 9s, connect_retry: 2s}
    - {neighbor: %s, local_address: %s, hold_time: 9s, connect_retry: 2s}
    - {neighbor: "%s", local_address: "%s", role: edge, interface: eth-peer, hold_time: 9s, connect_retry: 2s}
    - {neighbor: %s, local_address: %s, role: edge, interface: eth-peer, hold_time: 9s, connect_retry: 2s}
`, core6, coreLocal6, core4, coreLocal4, peer6, peerLocal6, peer4, peerLocal4) + ControllerBlock(profile, stateDir, true)
}

// GrayFailISPB makes ISP-B's router drop every forwarded packet while its
// BGP sessions stay up.
func (l *TwoEdge) GrayFailISPB(ctx context.Context) error { return nftForward(ctx, l.ISPB, "drop") }

// EgressDevice2 is EgressDevice for edge-2.
func (l *TwoEdge) EgressDevice2(ctx context.Context) string { return egressDevice(ctx, l.Edge2) }

// CoreDefault returns the edge whose ::/0 the core router uses (by the
// session address on the core's side of the link, Edge1CoreAddr6 or
// Edge2CoreAddr6) and the LOCAL_PREF of each edge's ::/0, such as
// "2001:db8:face:11::1 [2001:db8:face:11::1=200 2001:db8:face:12::1=200]".
func (l *TwoEdge) CoreDefault(ctx context.Context) (string, error) {
	paths, err := l.CoreRouter.Paths(ctx, netip.MustParsePrefix("::/0"))
	if err != nil {
		return "", err
	}
	best := "none"
	var all []string
	for _, p := range paths {
		lp := "-"
		if p.LocalPref != nil {
			lp = fmt.Sprint(*p.LocalPref)
		}
		all = append(all, fmt.Sprintf("%s=%s", p.From, lp))
		if p.Best {
			best = p.From.String()
		}
	}
	return fmt.Sprintf("%s %v", best, all), nil
}

// Routers lists the two-edge lab's routers by role, for printing.
func (l *TwoEdge) Routers() map[string]Router {
	m := l.Lab.Routers()
	m["core"] = l.CoreRouter
	return m
}

// Describe says which namespace is which, for humans.
func (l *TwoEdge) Describe() string {
	return fmt.Sprintf("edge-1=%s edge-2=%s core=%s isp-a=%s isp-b=%s transit=%s inet=%s lan=%s",
		l.Edge.Name, l.Edge2.Name, l.Core.Name, l.ISPA.Name, l.ISPB.Name, l.Transit.Name, l.Inet.Name, l.LAN.Name)
}

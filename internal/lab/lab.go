package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/multihomed/multihomed/internal/delayline"
	"github.com/multihomed/multihomed/internal/netns"
)

// Options shape a lab.
type Options struct {
	// ID makes every name unique; netns.UniqueID gives a good one.
	ID string
	// ISPBFRR runs ISP-B on FRR instead of BIRD.
	ISPBFRR bool
	// ISPAPassword and ISPBPassword set TCP-MD5 on the ISPs' sessions with
	// the edge.
	ISPAPassword, ISPBPassword string
	// ISPATTLSecurity turns on GTSM on ISP-A's sessions with the edge.
	ISPATTLSecurity bool
	// Core runs an FRR "core" router in the LAN namespace, an iBGP peer of
	// the edge (see EdgeIBGP).
	Core bool
	// ISPAExtraRoutes, when above zero, makes ISP-A send the edge that many
	// extra routes (the filter test's dirty table), kept from the transit.
	ISPAExtraRoutes int
	// BIRDInbound runs ISP-A and the transit on BIRD instead of FRR, so
	// that the inbound path of the failover scenarios has no FRR router
	// (FRR holds BGP route processing for 50 ms per router). It does not
	// combine with ISPAExtraRoutes or ISPATTLSecurity.
	BIRDInbound bool
}

// Lab is a running namespace lab.
type Lab struct {
	// Namespaces.
	Edge, ISPA, ISPB, Transit, Inet, LAN *netns.NS
	// Routers: FRR (*FRR) unless the options say otherwise (*BIRD).
	ISPARouter    Router
	ISPBRouter    Router
	TransitRouter Router
	// CoreRouter is the LAN's FRR when Options.Core is set.
	CoreRouter *FRR

	closers []func()

	mu          sync.Mutex
	delay       *delayline.Line // ISP-A's added delay (DelayISPA)
	targetDelay *delayline.Line // the internet host's distance (DelayTargets)
	targetDist  time.Duration   // its delay
}

// Node names inside every lab; namespaces are "mh<ID><short>".
var nodeShort = map[string]string{"edge": "e", "isp-a": "a", "isp-b": "b", "transit": "t", "inet": "i", "lan": "l"}

// newNS creates the namespace "mh"+id+short and has Close remove it.
func (l *Lab) newNS(ctx context.Context, id, short string) (*netns.NS, error) {
	n, err := netns.New(ctx, "mh"+id+short)
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, func() { _ = n.Close() })
	return n, nil
}

// Up builds the lab. On error everything built so far is removed.
func Up(ctx context.Context, opts Options) (l *Lab, err error) {
	if opts.ID == "" {
		opts.ID = netns.UniqueID()
	}
	l = &Lab{}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	for _, x := range []struct {
		p    **netns.NS
		node string
	}{{&l.Edge, "edge"}, {&l.ISPA, "isp-a"}, {&l.ISPB, "isp-b"}, {&l.Transit, "transit"}, {&l.Inet, "inet"}, {&l.LAN, "lan"}} {
		if *x.p, err = l.newNS(ctx, opts.ID, nodeShort[x.node]); err != nil {
			return nil, err
		}
	}
	type end struct {
		ns    *netns.NS
		dev   string
		addrs []netip.Addr
	}
	links := []struct {
		a, b         end
		bits6, bits4 int
	}{
		{end{l.Edge, "eth-a", []netip.Addr{EdgeAAddr6, EdgeAAddr4}}, end{l.ISPA, "eth-edge", []netip.Addr{ISPAAddr6, ISPAAddr4}}, 64, 24},
		{end{l.Edge, "eth-b", []netip.Addr{EdgeBAddr6, EdgeBAddr4}}, end{l.ISPB, "eth-edge", []netip.Addr{ISPBAddr6, ISPBAddr4}}, 64, 24},
		{end{l.ISPA, "eth-tr", []netip.Addr{ISPATrAddr6, ISPATrAddr4}}, end{l.Transit, "eth-a", []netip.Addr{TransitAAddr6, TransitAAddr4}}, 64, 24},
		{end{l.ISPB, "eth-tr", []netip.Addr{ISPBTrAddr6, ISPBTrAddr4}}, end{l.Transit, "eth-b", []netip.Addr{TransitBAddr6, TransitBAddr4}}, 64, 24},
		{end{l.Transit, "eth-inet", []netip.Addr{TransitInetAddr6, TransitInetAddr4}}, end{l.Inet, "eth0", []netip.Addr{InetAddr6, InetAddr4}}, 64, 24},
		{end{l.Edge, "eth-lan", []netip.Addr{EdgeLANAddr6, EdgeLANAddr4}}, end{l.LAN, "eth0", []netip.Addr{LANAddr6, LANAddr4}}, 64, 24},
	}
	for _, ln := range links {
		if err := netns.Veth(ctx, ln.a.ns, ln.a.dev, ln.b.ns, ln.b.dev); err != nil {
			return nil, err
		}
		for _, e := range []end{ln.a, ln.b} {
			for _, a := range e.addrs {
				bits := ln.bits6
				if a.Is4() {
					bits = ln.bits4
				}
				if err := e.ns.AddAddr(ctx, e.dev, netip.PrefixFrom(a, bits)); err != nil {
					return nil, err
				}
			}
		}
	}
	// Hosts route everything to their one router.
	for _, h := range []struct {
		ns     *netns.NS
		gw6    netip.Addr
		gw4    netip.Addr
		device string
	}{{l.Inet, TransitInetAddr6, TransitInetAddr4, "eth0"}, {l.LAN, EdgeLANAddr6, EdgeLANAddr4, "eth0"}} {
		if _, err := h.ns.Run(ctx, "ip", "-6", "route", "add", "default", "via", h.gw6.String(), "dev", h.device); err != nil {
			return nil, err
		}
		if _, err := h.ns.Run(ctx, "ip", "-4", "route", "add", "default", "via", h.gw4.String(), "dev", h.device); err != nil {
			return nil, err
		}
	}

	if opts.BIRDInbound {
		if opts.ISPAExtraRoutes > 0 || opts.ISPATTLSecurity {
			return nil, errors.New("lab: BIRDInbound does not combine with ISPAExtraRoutes or ISPATTLSecurity (FRR-only ISP-A features)")
		}
		tr, err := startBIRD(ctx, l.Transit, birdTransitConf(), map[netip.Addr]string{
			ISPATrAddr6: "ispa6", ISPATrAddr4: "ispa4", ISPBTrAddr6: "ispb6", ISPBTrAddr4: "ispb4",
		})
		if err != nil {
			return nil, err
		}
		l.TransitRouter = tr
		l.closers = append(l.closers, tr.Close)
		a, err := startBIRD(ctx, l.ISPA, birdISPConf(ispABIRD(opts.ISPAPassword)), birdISPProtocols(ispABIRD("")))
		if err != nil {
			return nil, err
		}
		l.ISPARouter = a
		l.closers = append(l.closers, a.Close)
	} else {
		// Transit (FRR): originates the internet host's space to both ISPs.
		tr, err := startFRR(ctx, l.Transit, frrBGPConf(ASNTransit, TransitInetAddr4, []frrNeighbor{
			{addr: ISPATrAddr6, asn: ASNISPA}, {addr: ISPATrAddr4, asn: ASNISPA},
			{addr: ISPBTrAddr6, asn: ASNISPB}, {addr: ISPBTrAddr4, asn: ASNISPB},
		}, []string{TransitPrefix6.String(), TransitPrefix4.String()}, ""))
		if err != nil {
			return nil, err
		}
		l.TransitRouter = tr
		l.closers = append(l.closers, tr.Close)
		if err := l.startFRRISPA(ctx, opts); err != nil {
			return nil, err
		}
	}

	// ISP-B: BIRD by default, a second implementation.
	if opts.ISPBFRR {
		f, err := startFRR(ctx, l.ISPB, frrBGPConf(ASNISPB, ISPBAddr4, []frrNeighbor{
			{addr: EdgeBAddr6, asn: ASNEdge, password: opts.ISPBPassword, defaultOriginate: true},
			{addr: EdgeBAddr4, asn: ASNEdge, password: opts.ISPBPassword, defaultOriginate: true},
			{addr: TransitBAddr6, asn: ASNTransit}, {addr: TransitBAddr4, asn: ASNTransit},
		}, []string{ISPBPrefix6.String()}, ""))
		if err != nil {
			return nil, err
		}
		l.ISPBRouter = f
		l.closers = append(l.closers, f.Close)
	} else {
		b, err := startBIRD(ctx, l.ISPB, birdISPConf(ispBBIRD(opts.ISPBPassword)), birdISPProtocols(ispBBIRD("")))
		if err != nil {
			return nil, err
		}
		l.ISPBRouter = b
		l.closers = append(l.closers, b.Close)
	}
	if opts.Core {
		conf := fmt.Sprintf(`router bgp %d
 bgp router-id %s
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 timers bgp 3 9
 neighbor %s remote-as %d
 neighbor %s timers connect 2
 neighbor %s remote-as %d
 neighbor %s timers connect 2
 address-family ipv6 unicast
  neighbor %s activate
 exit-address-family
 address-family ipv4 unicast
  neighbor %s activate
 exit-address-family
`, ASNEdge, LANAddr4, EdgeLANAddr6, ASNEdge, EdgeLANAddr6, EdgeLANAddr4, ASNEdge, EdgeLANAddr4, EdgeLANAddr6, EdgeLANAddr4)
		if l.CoreRouter, err = startFRR(ctx, l.LAN, conf); err != nil {
			return nil, err
		}
		l.closers = append(l.closers, l.CoreRouter.Close)
	}
	return l, nil
}

// startFRRISPA starts ISP-A on FRR: a default route to the edge,
// everything else to the transit. Each ISP originates its space, link
// prefixes included, so replies to probes sourced from the edge's uplink
// addresses find their way back.
func (l *Lab) startFRRISPA(ctx context.Context, opts Options) error {
	networks := []string{ISPAPrefix6.String(), "198.18.1.0/24"}
	extra := ""
	toTransit := ""
	if opts.ISPAExtraRoutes > 0 {
		networks = append(networks, extraRoutes(opts.ISPAExtraRoutes)...)
		extra, toTransit = extraRouteMaps, "TO-TRANSIT"
	}
	a, err := startFRR(ctx, l.ISPA, frrBGPConf(ASNISPA, ISPAAddr4, []frrNeighbor{
		{addr: EdgeAAddr6, asn: ASNEdge, password: opts.ISPAPassword, defaultOriginate: true, ttlSecurity: opts.ISPATTLSecurity},
		{addr: EdgeAAddr4, asn: ASNEdge, password: opts.ISPAPassword, defaultOriginate: true, ttlSecurity: opts.ISPATTLSecurity},
		{addr: TransitAAddr6, asn: ASNTransit, routeMapOut: toTransit},
		{addr: TransitAAddr4, asn: ASNTransit, routeMapOut: toTransit},
	}, networks, extra))
	if err != nil {
		return err
	}
	l.ISPARouter = a
	l.closers = append(l.closers, a.Close)
	return nil
}

// Close tears everything down, routers first. It is safe to call twice.
func (l *Lab) Close() {
	_ = l.closeDelay(&l.delay)
	_ = l.closeDelay(&l.targetDelay)
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
	l.closers = nil
}

// Routers lists the lab's routers by role, for printing.
func (l *Lab) Routers() map[string]Router {
	return map[string]Router{"isp-a": l.ISPARouter, "isp-b": l.ISPBRouter, "transit": l.TransitRouter}
}

// Describe says which namespace is which, for humans.
func (l *Lab) Describe() string {
	return fmt.Sprintf("edge=%s isp-a=%s isp-b=%s transit=%s inet=%s lan=%s",
		l.Edge.Name, l.ISPA.Name, l.ISPB.Name, l.Transit.Name, l.Inet.Name, l.LAN.Name)
}

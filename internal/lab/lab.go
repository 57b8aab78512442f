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
	// ISPAPlainRoutes and ISPBPlainRoutes, when above zero, make ISP-A and
	// ISP-B (which must then be FRR: ISPBFRR) send that many clean routes,
	// partly the same destinations (Tables), kept from the transit.
	ISPAPlainRoutes, ISPBPlainRoutes int
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

// closeOnError is the deferred clean-up of a lab being built: when *err
// is set it closes l, removing what was built so far. Defer it with the
// lab itself, not its named result: every error path returns nil, which
// clears the named result before deferred calls run, while the deferred
// argument was evaluated at the defer.
func closeOnError[T interface{ Close() }](l T, err *error) {
	if *err != nil {
		l.Close()
	}
}

// nsNode is a lab namespace to create: where to keep it and its short
// name (see nodeShort).
type nsNode struct {
	p     **netns.NS
	short string
}

// newNamespaces creates each node's namespace, "mh"+id+short, in order,
// and has Close remove them.
func (l *Lab) newNamespaces(ctx context.Context, id string, nodes []nsNode) error {
	for _, n := range nodes {
		ns, err := l.newNS(ctx, id, n.short)
		if err != nil {
			return err
		}
		*n.p = ns
	}
	return nil
}

// check rejects options that do not combine, before Up creates anything:
// the routers use them as they start.
func (opts Options) check() error {
	if opts.BIRDInbound && (opts.ISPAExtraRoutes > 0 || opts.ISPAPlainRoutes > 0 || opts.ISPATTLSecurity) {
		return errors.New("lab: BIRDInbound does not combine with ISPAExtraRoutes, ISPAPlainRoutes or ISPATTLSecurity (FRR-only ISP-A features)")
	}
	if opts.ISPBPlainRoutes > 0 && !opts.ISPBFRR {
		return errors.New("lab: ISPBPlainRoutes needs ISPBFRR (the routes are FRR networks)")
	}
	if max(opts.ISPAPlainRoutes, opts.ISPAPlainRoutes/2+opts.ISPBPlainRoutes) > maxPlainRoutes || opts.ISPAPlainRoutes < 0 || opts.ISPBPlainRoutes < 0 {
		return fmt.Errorf("lab: ISPAPlainRoutes %d and ISPBPlainRoutes %d: at most %d destinations in all", opts.ISPAPlainRoutes, opts.ISPBPlainRoutes, maxPlainRoutes)
	}
	return nil
}

// Up builds the lab. On error everything built so far is removed.
func Up(ctx context.Context, opts Options) (l *Lab, err error) {
	if opts.ID == "" {
		opts.ID = netns.UniqueID()
	}
	if err := opts.check(); err != nil {
		return nil, err
	}
	l = &Lab{}
	defer closeOnError(l, &err)
	if err := l.newNamespaces(ctx, opts.ID, []nsNode{
		{&l.Edge, nodeShort["edge"]}, {&l.ISPA, nodeShort["isp-a"]}, {&l.ISPB, nodeShort["isp-b"]},
		{&l.Transit, nodeShort["transit"]}, {&l.Inet, nodeShort["inet"]}, {&l.LAN, nodeShort["lan"]},
	}); err != nil {
		return nil, err
	}
	if err := connect(ctx, []link{
		{linkEnd{l.Edge, "eth-a", []netip.Addr{EdgeAAddr6, EdgeAAddr4}}, linkEnd{l.ISPA, "eth-edge", []netip.Addr{ISPAAddr6, ISPAAddr4}}},
		{linkEnd{l.Edge, "eth-b", []netip.Addr{EdgeBAddr6, EdgeBAddr4}}, linkEnd{l.ISPB, "eth-edge", []netip.Addr{ISPBAddr6, ISPBAddr4}}},
		{linkEnd{l.ISPA, "eth-tr", []netip.Addr{ISPATrAddr6, ISPATrAddr4}}, linkEnd{l.Transit, "eth-a", []netip.Addr{TransitAAddr6, TransitAAddr4}}},
		{linkEnd{l.ISPB, "eth-tr", []netip.Addr{ISPBTrAddr6, ISPBTrAddr4}}, linkEnd{l.Transit, "eth-b", []netip.Addr{TransitBAddr6, TransitBAddr4}}},
		{linkEnd{l.Transit, "eth-inet", []netip.Addr{TransitInetAddr6, TransitInetAddr4}}, linkEnd{l.Inet, "eth0", []netip.Addr{InetAddr6, InetAddr4}}},
		{linkEnd{l.Edge, "eth-lan", []netip.Addr{EdgeLANAddr6, EdgeLANAddr4}}, linkEnd{l.LAN, "eth0", []netip.Addr{LANAddr6, LANAddr4}}},
	}, ispLinkBits); err != nil {
		return nil, err
	}
	// Hosts route everything to their one router.
	if err := addRoutes(ctx, []staticRoute{
		{l.Inet, "default", TransitInetAddr6, "eth0"}, {l.Inet, "default", TransitInetAddr4, "eth0"},
		{l.LAN, "default", EdgeLANAddr6, "eth0"}, {l.LAN, "default", EdgeLANAddr4, "eth0"},
	}); err != nil {
		return nil, err
	}

	if opts.BIRDInbound {
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
		if err := l.startFRRTransit(ctx); err != nil {
			return nil, err
		}
		if err := l.startFRRISPA(ctx, opts); err != nil {
			return nil, err
		}
	}

	// ISP-B: BIRD by default, a second implementation.
	if opts.ISPBFRR {
		networks, extra, toTransit := []string{ISPBPrefix6.String()}, "", ""
		if opts.ISPBPlainRoutes > 0 {
			ft := Tables(opts.ISPAPlainRoutes, opts.ISPBPlainRoutes)
			networks = append(networks, plainNetworks(append(ft.Shared, ft.OnlyB...), "ISPB-EXTRA")...)
			extra, toTransit = ispBExtraRouteMaps, "ISPB-TO-TRANSIT"
		}
		f, err := startFRR(ctx, l.ISPB, frrBGPConf(ASNISPB, ISPBAddr4, []frrNeighbor{
			{addr: EdgeBAddr6, asn: ASNEdge, password: opts.ISPBPassword, defaultOriginate: true},
			{addr: EdgeBAddr4, asn: ASNEdge, password: opts.ISPBPassword, defaultOriginate: true},
			{addr: TransitBAddr6, asn: ASNTransit, routeMapOut: toTransit}, {addr: TransitBAddr4, asn: ASNTransit, routeMapOut: toTransit},
		}, networks, extra))
		if err != nil {
			return nil, err
		}
		l.ISPBRouter = f
		l.closers = append(l.closers, f.Close)
	} else if err := l.startBIRDISPB(ctx, opts.ISPBPassword); err != nil {
		return nil, err
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

// startFRRTransit starts the transit on FRR: it originates the internet
// host's space to both ISPs.
func (l *Lab) startFRRTransit(ctx context.Context) error {
	tr, err := startFRR(ctx, l.Transit, frrBGPConf(ASNTransit, TransitInetAddr4, []frrNeighbor{
		{addr: ISPATrAddr6, asn: ASNISPA}, {addr: ISPATrAddr4, asn: ASNISPA},
		{addr: ISPBTrAddr6, asn: ASNISPB}, {addr: ISPBTrAddr4, asn: ASNISPB},
	}, []string{TransitPrefix6.String(), TransitPrefix4.String()}, ""))
	if err != nil {
		return err
	}
	l.TransitRouter = tr
	l.closers = append(l.closers, tr.Close)
	return nil
}

// startBIRDISPB starts ISP-B on BIRD (the labs' second implementation),
// with password on its sessions to the edge ("" for none).
func (l *Lab) startBIRDISPB(ctx context.Context, password string) error {
	b, err := startBIRD(ctx, l.ISPB, birdISPConf(ispBBIRD(password)), birdISPProtocols(ispBBIRD("")))
	if err != nil {
		return err
	}
	l.ISPBRouter = b
	l.closers = append(l.closers, b.Close)
	return nil
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
	}
	if opts.ISPAPlainRoutes > 0 {
		ft := Tables(opts.ISPAPlainRoutes, opts.ISPBPlainRoutes)
		networks = append(networks, plainNetworks(append(ft.OnlyA, ft.Shared...), "EXTRA")...)
	}
	if opts.ISPAExtraRoutes > 0 || opts.ISPAPlainRoutes > 0 {
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

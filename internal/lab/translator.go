package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/multihomed/multihomed/internal/netns"
)

// Addresses of the translator topology (UpTranslator). The LAN host has a
// ULA address and routes via the edge; the out host stands for the ISP and
// the internet and routes the PA prefixes back to the edge.
var (
	NPTLANHost   = netip.MustParseAddr("fd7a:5e1d:9c00:1::2")
	NPTEdgeLAN   = netip.MustParseAddr("fd7a:5e1d:9c00:1::1")
	NPTEdgeUp    = netip.MustParseAddr("2001:db8:1000:1::2")
	NPTOutRouter = netip.MustParseAddr("2001:db8:1000:1::1")
	// NPTOutHost is "the internet host", on the out host's loopback.
	NPTOutHost = netip.MustParseAddr("2001:db8:9000::1")
	// NPTInternal is the site's ULA prefix (routed to the LAN host beyond
	// its own /64); NPTPA the ISP's prefix the out host routes back to the
	// edge; NPTPAB a second one, for a second mapping's external prefix on
	// the same uplink.
	NPTInternal = netip.MustParsePrefix("fd7a:5e1d:9c00::/48")
	NPTPA       = netip.MustParsePrefix("2001:db8:1001::/48")
	NPTPAB      = netip.MustParsePrefix("2001:db8:2001::/48")
)

// Translator is the three-namespace topology the NPTv6 integration tests
// and `nptv6ctl bench` run in, with no routers:
//
//	[LAN host] --veth-- [Edge] --veth (the uplink)-- [Out host]
//
// The edge forwards and is where the translator runs, on EdgeUpIf. Only the
// edge forwards: the hosts drop what is not theirs, so a packet the
// translator got wrong stops there instead of looping back. Neighbour
// entries are static, so no neighbour discovery races a test and frames a
// test injects are forwarded at once.
type Translator struct {
	// ID makes every name unique; tests build further names from it (keep
	// them within 15 bytes: two letters and the ID fit).
	ID string
	// Namespaces.
	LAN, Edge, Out *netns.NS
	// Interfaces: LANIf in LAN, EdgeLANIf and EdgeUpIf in Edge, OutIf in
	// Out.
	LANIf, EdgeLANIf, EdgeUpIf, OutIf string
	// MAC addresses of the four interfaces.
	LANMAC, EdgeLANMAC, EdgeUpMAC, OutMAC net.HardwareAddr
}

// UpTranslator builds a translator topology; an empty id picks a random
// one (netns.UniqueID). On error it removes what it built. The caller must
// Close it.
func UpTranslator(ctx context.Context, id string) (t *Translator, err error) {
	if id == "" {
		id = netns.UniqueID()
	}
	t = &Translator{ID: id, LANIf: "nl" + id, EdgeLANIf: "el" + id, EdgeUpIf: "eu" + id, OutIf: "no" + id}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
			t = nil
		}
	}()
	for _, x := range []struct {
		p      **netns.NS
		short  string
		router bool
	}{{&t.LAN, "l", false}, {&t.Edge, "e", true}, {&t.Out, "o", false}} {
		n, err := netns.New(ctx, "npt"+id+x.short)
		if err != nil {
			return nil, err
		}
		*x.p = n
		// Error messages are part of what the tests check: none may be
		// rate-limited away.
		setup := [][]string{{"sysctl", "-qw", "net.ipv6.icmp.ratelimit=0"}}
		if !x.router {
			setup = append(setup, []string{"sysctl", "-qw", "net.ipv6.conf.all.forwarding=0"})
		}
		for _, args := range setup {
			if _, err := n.Run(ctx, args...); err != nil {
				return nil, err
			}
		}
	}
	if err := netns.Veth(ctx, t.LAN, t.LANIf, t.Edge, t.EdgeLANIf); err != nil {
		return nil, err
	}
	if err := netns.Veth(ctx, t.Edge, t.EdgeUpIf, t.Out, t.OutIf); err != nil {
		return nil, err
	}
	for _, a := range []struct {
		ns     *netns.NS
		dev    string
		prefix netip.Prefix
	}{
		{t.LAN, t.LANIf, netip.PrefixFrom(NPTLANHost, 64)},
		{t.Edge, t.EdgeLANIf, netip.PrefixFrom(NPTEdgeLAN, 64)},
		{t.Edge, t.EdgeUpIf, netip.PrefixFrom(NPTEdgeUp, 64)},
		{t.Out, t.OutIf, netip.PrefixFrom(NPTOutRouter, 64)},
		{t.Out, "lo", netip.PrefixFrom(NPTOutHost, 128)},
	} {
		if err := a.ns.AddAddr(ctx, a.dev, a.prefix); err != nil {
			return nil, err
		}
	}
	if err := addRoutes(ctx, []staticRoute{
		{t.LAN, "default", NPTEdgeLAN, ""},
		{t.Edge, "default", NPTOutRouter, ""},
		// Other internal subnets live behind the LAN host.
		{t.Edge, NPTInternal.String(), NPTLANHost, ""},
		{t.Out, NPTPA.String(), NPTEdgeUp, ""},
		{t.Out, NPTPAB.String(), NPTEdgeUp, ""},
	}); err != nil {
		return nil, err
	}
	for _, x := range []struct {
		ns  *netns.NS
		dev string
		mac *net.HardwareAddr
	}{{t.LAN, t.LANIf, &t.LANMAC}, {t.Edge, t.EdgeLANIf, &t.EdgeLANMAC}, {t.Edge, t.EdgeUpIf, &t.EdgeUpMAC}, {t.Out, t.OutIf, &t.OutMAC}} {
		if *x.mac, err = hardwareAddr(x.ns, x.dev); err != nil {
			return nil, err
		}
	}
	for _, n := range []struct {
		ns   *netns.NS
		addr netip.Addr
		mac  net.HardwareAddr
		dev  string
	}{
		{t.LAN, NPTEdgeLAN, t.EdgeLANMAC, t.LANIf},
		{t.Edge, NPTLANHost, t.LANMAC, t.EdgeLANIf},
		{t.Edge, NPTOutRouter, t.OutMAC, t.EdgeUpIf},
		{t.Out, NPTEdgeUp, t.EdgeUpMAC, t.OutIf},
	} {
		if _, err := n.ns.Run(ctx, "ip", "neigh", "replace", n.addr.String(), "lladdr", n.mac.String(), "dev", n.dev, "nud", "permanent"); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func hardwareAddr(ns *netns.NS, dev string) (net.HardwareAddr, error) {
	var hw net.HardwareAddr
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return fmt.Errorf("lab: %s in %s: %w", dev, ns.Name, err)
		}
		hw = ifi.HardwareAddr
		return nil
	})
	return hw, err
}

// Close removes the namespaces; the links go with them. It is safe to call
// twice.
func (t *Translator) Close() error {
	var errs []error
	for _, n := range []*netns.NS{t.LAN, t.Edge, t.Out} {
		if n != nil {
			errs = append(errs, n.Close())
		}
	}
	return errors.Join(errs...)
}

// RxPackets returns the received-packets counter of dev in ns.
func RxPackets(ctx context.Context, ns *netns.NS, dev string) (uint64, error) {
	rx, _, err := linkPackets(ctx, ns, dev)
	return rx, err
}

// linkPackets returns the received- and sent-packets counters of dev in ns.
func linkPackets(ctx context.Context, ns *netns.NS, dev string) (rx, tx uint64, err error) {
	out, err := ns.Run(ctx, "ip", "-j", "-s", "link", "show", "dev", dev)
	if err != nil {
		return 0, 0, fmt.Errorf("lab: read counters of %s: %w", dev, err)
	}
	type counter struct {
		Packets uint64 `json:"packets"`
	}
	var links []struct {
		Stats64 struct {
			Rx counter `json:"rx"`
			Tx counter `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return 0, 0, fmt.Errorf("lab: parse counters of %s in %s: %w", dev, ns.Name, err)
	}
	if len(links) != 1 {
		return 0, 0, fmt.Errorf("lab: counters of %s in %s: %d links in the answer, want 1", dev, ns.Name, len(links))
	}
	return links[0].Stats64.Rx.Packets, links[0].Stats64.Tx.Packets, nil
}

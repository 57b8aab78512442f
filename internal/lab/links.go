package lab

import (
	"context"
	"net/netip"

	"github.com/multihomed/multihomed/internal/netns"
)

// linkEnd is one end of a lab link: the namespace, the device's name there
// and the addresses the device gets.
type linkEnd struct {
	ns    *netns.NS
	dev   string
	addrs []netip.Addr
}

// link is a veth pair between two ends.
type link struct{ a, b linkEnd }

// connect creates every link and gives each end its addresses, with the
// prefix length bits says for the address.
func connect(ctx context.Context, links []link, bits func(netip.Addr) int) error {
	for _, ln := range links {
		if err := netns.Veth(ctx, ln.a.ns, ln.a.dev, ln.b.ns, ln.b.dev); err != nil {
			return err
		}
		for _, e := range []linkEnd{ln.a, ln.b} {
			for _, a := range e.addrs {
				if err := e.ns.AddAddr(ctx, e.dev, netip.PrefixFrom(a, bits(a))); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ispLinkBits is the prefix length of the labs' provider links: /64 for
// IPv6, /24 for IPv4 (DESIGN.md section 6).
func ispLinkBits(a netip.Addr) int {
	if a.Is6() {
		return 64
	}
	return 24
}

// staticRoute is a route in ns to dst ("default" or a prefix) via a
// gateway; the gateway's family picks `ip -6` or `ip -4`. An empty dev
// lets the kernel find the device from the gateway.
type staticRoute struct {
	ns  *netns.NS
	dst string
	via netip.Addr
	dev string
}

// addRoutes adds every route, in order.
func addRoutes(ctx context.Context, routes []staticRoute) error {
	for _, r := range routes {
		fam := "-6"
		if r.via.Is4() {
			fam = "-4"
		}
		args := []string{"ip", fam, "route", "add", r.dst, "via", r.via.String()}
		if r.dev != "" {
			args = append(args, "dev", r.dev)
		}
		if _, err := r.ns.Run(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

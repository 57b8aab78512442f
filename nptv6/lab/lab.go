// Package lab builds the three-namespace topology the nptv6 integration
// tests and the nptv6ctl bench run in:
//
//	[lan host] --veth-- [edge] --veth (the uplink)-- [out host]
//
// The LAN host has the ULA address fd7a:5e1d:9c00:1::2 and routes via the
// edge; the edge forwards and is where the translator runs, on its uplink;
// the out host stands for the ISP and the internet (2001:db8:1000:1::1 on
// the link, 2001:db8:9000::1 as "the internet host") and routes the PA
// prefixes back to the edge. All addresses are documentation or ULA space
// and all traffic stays inside the namespaces.
//
// Every name carries a per-topology suffix, so topologies of parallel tests
// never collide. Close removes the namespaces (and with them the links).
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	mhnetns "github.com/multihomed/multihomed/internal/netns"
)

// Addresses used in the topology.
var (
	LANHost   = netip.MustParseAddr("fd7a:5e1d:9c00:1::2")
	EdgeLAN   = netip.MustParseAddr("fd7a:5e1d:9c00:1::1")
	EdgeUp    = netip.MustParseAddr("2001:db8:1000:1::2")
	OutRouter = netip.MustParseAddr("2001:db8:1000:1::1")
	OutHost   = netip.MustParseAddr("2001:db8:9000::1")
	// Internal is the site's ULA prefix; PA is the prefix from the ISP the
	// out host routes back to the edge, PAB a second one (a second
	// mapping's external prefix on the same uplink).
	Internal = netip.MustParsePrefix("fd7a:5e1d:9c00::/48")
	PA       = netip.MustParsePrefix("2001:db8:1001::/48")
	PAB      = netip.MustParsePrefix("2001:db8:2001::/48")
)

// Topology is one instance of the three namespaces.
type Topology struct {
	// Suffix makes every name of this topology unique (pid and random bits).
	Suffix string
	// Namespace names (under /run/netns).
	LAN, Edge, Out string
	// Interface names: LANIf in LAN, EdgeLANIf and EdgeUpIf in Edge, OutIf
	// in Out.
	LANIf, EdgeLANIf, EdgeUpIf, OutIf string
	// MAC addresses of the four interfaces.
	LANMAC, EdgeLANMAC, EdgeUpMAC, OutMAC net.HardwareAddr
}

// Path returns the file of namespace ns, as nptv6 options want it.
func Path(ns string) string { return "/run/netns/" + ns }

// New creates a topology. On error it removes what it created.
func New(ctx context.Context) (*Topology, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	sfx := fmt.Sprintf("%04x", os.Getpid()&0xffff) + hex.EncodeToString(b[:])[:4]
	t := &Topology{
		Suffix: sfx,
		LAN:    "npt-lan-" + sfx, Edge: "npt-edge-" + sfx, Out: "npt-out-" + sfx,
		LANIf: "nl" + sfx, EdgeLANIf: "el" + sfx, EdgeUpIf: "eu" + sfx, OutIf: "no" + sfx,
	}
	if err := t.setup(ctx); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return t, nil
}

func (t *Topology) setup(ctx context.Context) error {
	for _, ns := range []string{t.LAN, t.Edge, t.Out} {
		if err := run(ctx, "ip", "netns", "add", ns); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"ip", "link", "add", t.LANIf, "netns", t.LAN, "type", "veth", "peer", "name", t.EdgeLANIf, "netns", t.Edge},
		{"ip", "link", "add", t.EdgeUpIf, "netns", t.Edge, "type", "veth", "peer", "name", t.OutIf, "netns", t.Out},
	}
	for _, ns := range []string{t.LAN, t.Edge, t.Out} {
		steps = append(steps,
			[]string{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.keep_addr_on_down=1"},
			[]string{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.icmp.ratelimit=0"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	steps = append(steps,
		[]string{"ip", "netns", "exec", t.Edge, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
		[]string{"ip", "-n", t.LAN, "addr", "add", LANHost.String() + "/64", "dev", t.LANIf, "nodad"},
		[]string{"ip", "-n", t.Edge, "addr", "add", EdgeLAN.String() + "/64", "dev", t.EdgeLANIf, "nodad"},
		[]string{"ip", "-n", t.Edge, "addr", "add", EdgeUp.String() + "/64", "dev", t.EdgeUpIf, "nodad"},
		[]string{"ip", "-n", t.Out, "addr", "add", OutRouter.String() + "/64", "dev", t.OutIf, "nodad"},
		[]string{"ip", "-n", t.Out, "addr", "add", OutHost.String() + "/128", "dev", "lo"},
		[]string{"ip", "-n", t.LAN, "link", "set", t.LANIf, "up"},
		[]string{"ip", "-n", t.Edge, "link", "set", t.EdgeLANIf, "up"},
		[]string{"ip", "-n", t.Edge, "link", "set", t.EdgeUpIf, "up"},
		[]string{"ip", "-n", t.Out, "link", "set", t.OutIf, "up"},
		[]string{"ip", "-n", t.LAN, "-6", "route", "add", "default", "via", EdgeLAN.String()},
		[]string{"ip", "-n", t.Edge, "-6", "route", "add", "default", "via", OutRouter.String()},
		// Other internal subnets live behind the LAN host.
		[]string{"ip", "-n", t.Edge, "-6", "route", "add", Internal.String(), "via", LANHost.String()},
		[]string{"ip", "-n", t.Out, "-6", "route", "add", PA.String(), "via", EdgeUp.String()},
		[]string{"ip", "-n", t.Out, "-6", "route", "add", PAB.String(), "via", EdgeUp.String()},
	)
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	var err error
	for _, x := range []struct {
		ns, ifname string
		mac        *net.HardwareAddr
	}{{t.LAN, t.LANIf, &t.LANMAC}, {t.Edge, t.EdgeLANIf, &t.EdgeLANMAC}, {t.Edge, t.EdgeUpIf, &t.EdgeUpMAC}, {t.Out, t.OutIf, &t.OutMAC}} {
		if *x.mac, err = t.mac(x.ns, x.ifname); err != nil {
			return err
		}
	}
	// Static neighbours: no neighbour discovery races in tests, and the
	// differential test's injected frames are forwarded at once.
	for _, s := range [][]string{
		{"ip", "-n", t.LAN, "neigh", "replace", EdgeLAN.String(), "lladdr", t.EdgeLANMAC.String(), "dev", t.LANIf, "nud", "permanent"},
		{"ip", "-n", t.Edge, "neigh", "replace", LANHost.String(), "lladdr", t.LANMAC.String(), "dev", t.EdgeLANIf, "nud", "permanent"},
		{"ip", "-n", t.Edge, "neigh", "replace", OutRouter.String(), "lladdr", t.OutMAC.String(), "dev", t.EdgeUpIf, "nud", "permanent"},
		{"ip", "-n", t.Out, "neigh", "replace", EdgeUp.String(), "lladdr", t.EdgeUpMAC.String(), "dev", t.OutIf, "nud", "permanent"},
	} {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) mac(ns, ifname string) (net.HardwareAddr, error) {
	var hw net.HardwareAddr
	err := Do(Path(ns), func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		hw = ifi.HardwareAddr
		return nil
	})
	return hw, err
}

// Exec runs a command inside namespace ns and returns its output.
func (t *Topology) Exec(ctx context.Context, ns string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab: in %s: %s: %w: %s", ns, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// Close removes the namespaces; the links go with them.
func (t *Topology) Close() error {
	var errs []error
	for _, ns := range []string{t.LAN, t.Edge, t.Out} {
		if _, err := os.Stat(Path(ns)); err != nil {
			continue
		}
		if err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Do runs fn on an OS thread inside the network namespace at path. Sockets
// fn creates stay in that namespace and may be used from anywhere after.
func Do(path string, fn func() error) error { return mhnetns.DoPath(path, fn) }

// RxPackets returns the received-packets counter of ifname in namespace ns.
func (t *Topology) RxPackets(ctx context.Context, ns, ifname string) (uint64, error) {
	out, err := exec.CommandContext(ctx, "ip", "-n", ns, "-j", "-s", "link", "show", "dev", ifname).Output()
	if err != nil {
		return 0, fmt.Errorf("lab: read counters of %s in %s: %w", ifname, ns, err)
	}
	var links []struct {
		Stats64 struct {
			Rx struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("lab: parse counters of %s in %s: %v", ifname, ns, err)
	}
	return links[0].Stats64.Rx.Packets, nil
}

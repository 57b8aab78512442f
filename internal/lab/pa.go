package lab

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/netns"
)

// Addressing of the PA variant (DESIGN.md section 6): the site has no
// prefix of its own. The LAN host is on a ULA; ISP-A delegated PAPrefixA,
// ISP-B PAPrefixB, each routed statically to the edge's link address; the
// LAN's IPv4 is NATed to each ISP's link address. The zone's primary runs
// in its own namespace behind the transit.
var (
	PAInternal = netip.MustParsePrefix("fd7a:5e1d:9c00::/48")
	PAPrefixA  = netip.MustParsePrefix("2001:db8:1001::/48")
	PAPrefixB  = netip.MustParsePrefix("2001:db8:2001::/48")
	PAInside4  = netip.MustParsePrefix("192.0.2.0/24")
	// Edge <-> LAN host.
	PAEdgeLAN6 = netip.MustParseAddr("fd7a:5e1d:9c00:1::1")
	PALANAddr6 = netip.MustParseAddr("fd7a:5e1d:9c00:1::10")
	PAEdgeLAN4 = netip.MustParseAddr("192.0.2.1")
	PALANAddr4 = netip.MustParseAddr("192.0.2.10")
	// PAWWW is the published server's internal address (on the LAN host).
	PAWWW = netip.MustParseAddr("fd7a:5e1d:9c00:1::80")
	// Transit <-> the DNS server.
	TransitDNSAddr6 = netip.MustParseAddr("2001:db8:9000:2::1")
	DNSServerAddr6  = netip.MustParseAddr("2001:db8:9000:2::53")
)

// PA lab DNS names and key.
const (
	PAZone    = "site.example"
	PAHost    = "www"
	PAKeyName = "mh-update"
	// PAServerPort is where the lab's BIND answers.
	PAServerPort = 53
)

// PAName is the published host's fully qualified name.
var PAName = PAHost + "." + PAZone

// PALab is the namespace lab in PA mode: the PI lab's namespaces and
// routers (FRR for both ISPs and the transit), without BGP between the ISPs
// and the edge, plus a DNS namespace running BIND 9 as the zone's primary.
type PALab struct {
	*Lab
	// DNS is the DNS server's namespace.
	DNS *netns.NS
	// BIND is the running server (nil while stopped by StopBIND).
	BIND *BIND
	// BINDDir keeps the server's files across restarts (zone journals).
	BINDDir string
}

// UpPA builds the PA lab. On error everything built so far is removed.
func UpPA(ctx context.Context, id string) (p *PALab, err error) {
	if id == "" {
		id = netns.UniqueID()
	}
	l, err := Up(ctx, Options{ID: id, ISPBFRR: true})
	if err != nil {
		return nil, err
	}
	p = &PALab{Lab: l}
	defer closeOnError(p, &err)

	// The ISPs: no BGP with the edge; the PA prefix routed statically to
	// the edge's link address and originated to the transit, with the link
	// prefixes (the NAT44 sources and the probes' sources).
	for _, isp := range []struct {
		r                Router
		ns               *netns.NS
		asn              int
		edge6, edge4     netip.Addr
		pa               netip.Prefix
		link4, dev, name string
	}{
		{l.ISPARouter, l.ISPA, ASNISPA, EdgeAAddr6, EdgeAAddr4, PAPrefixA, "198.18.1.0/24", "eth-edge", "isp-a"},
		{l.ISPBRouter, l.ISPB, ASNISPB, EdgeBAddr6, EdgeBAddr4, PAPrefixB, "198.18.2.0/24", "eth-edge", "isp-b"},
	} {
		f, ok := isp.r.(*FRR)
		if !ok {
			return nil, fmt.Errorf("lab: PA lab: %s is not FRR", isp.name)
		}
		if err := f.Configure(ctx, fmt.Sprintf("router bgp %d", isp.asn),
			"no neighbor "+isp.edge6.String(), "no neighbor "+isp.edge4.String(),
			"address-family ipv6 unicast", "network "+isp.pa.String(), "exit-address-family",
			"address-family ipv4 unicast", "network "+isp.link4, "exit-address-family"); err != nil {
			return nil, err
		}
		if err := addRoutes(ctx, []staticRoute{{isp.ns, isp.pa.String(), isp.edge6, isp.dev}}); err != nil {
			return nil, err
		}
	}

	// The LAN on the ULA and an inside IPv4 prefix instead of the PI space.
	for _, dev := range []struct {
		ns    *netns.NS
		dev   string
		addrs []netip.Prefix
	}{
		{l.Edge, "eth-lan", []netip.Prefix{netip.PrefixFrom(PAEdgeLAN6, 64), netip.PrefixFrom(PAEdgeLAN4, 24)}},
		{l.LAN, "eth0", []netip.Prefix{netip.PrefixFrom(PALANAddr6, 64), netip.PrefixFrom(PAWWW, 64), netip.PrefixFrom(PALANAddr4, 24)}},
	} {
		if _, err := dev.ns.Run(ctx, "ip", "addr", "flush", "dev", dev.dev, "scope", "global"); err != nil {
			return nil, err
		}
		for _, a := range dev.addrs {
			if err := dev.ns.AddAddr(ctx, dev.dev, a); err != nil {
				return nil, err
			}
		}
	}
	for _, r := range [][]string{
		{"ip", "-6", "route", "replace", "default", "via", PAEdgeLAN6.String(), "dev", "eth0"},
		{"ip", "-4", "route", "replace", "default", "via", PAEdgeLAN4.String(), "dev", "eth0"},
	} {
		if _, err := l.LAN.Run(ctx, r...); err != nil {
			return nil, err
		}
	}

	// The DNS server's namespace, behind the transit.
	dns, err := l.newNS(ctx, id, "d")
	if err != nil {
		return nil, err
	}
	p.DNS = dns
	if err := connect(ctx, []link{{linkEnd{l.Transit, "eth-dns", []netip.Addr{TransitDNSAddr6}}, linkEnd{dns, "eth0", []netip.Addr{DNSServerAddr6}}}}, ispLinkBits); err != nil {
		return nil, err
	}
	if err := addRoutes(ctx, []staticRoute{{dns, "default", TransitDNSAddr6, "eth0"}}); err != nil {
		return nil, err
	}
	if p.BINDDir, err = os.MkdirTemp("", "mh-pa-bind-"); err != nil {
		return nil, err
	}
	dir := p.BINDDir
	l.closers = append(l.closers, func() { _ = os.RemoveAll(dir) })
	return p, nil
}

// PABIND says how StartBIND runs the zone's primary: with which TSIG
// secret, and whether the zone accepts the key's updates (false: REFUSED).
type PABIND struct {
	Secret  []byte
	Dynamic bool
}

// StartBIND (re)starts the zone's primary in the DNS namespace, keeping
// the zone's contents across restarts.
func (p *PALab) StartBIND(ctx context.Context, c PABIND) error {
	p.StopBIND()
	b, err := StartBIND(ctx, BINDConfig{NS: p.DNS, Listen: netip.AddrPortFrom(DNSServerAddr6, PAServerPort), KeyName: PAKeyName, Secret: c.Secret,
		Zones: []BINDZone{{Name: PAZone, Dynamic: c.Dynamic}}, Dir: p.BINDDir})
	if err != nil {
		return err
	}
	p.BIND = b
	return nil
}

// StopBIND stops the zone's primary, if it runs.
func (p *PALab) StopBIND() {
	if p.BIND != nil {
		p.BIND.Close()
		p.BIND = nil
	}
}

// Close stops BIND and tears the lab down.
func (p *PALab) Close() {
	p.StopBIND()
	p.Lab.Close()
}

// Resolve asks the zone's primary, from the internet host, for the
// published host's AAAA records: what a resolver there would get.
func (p *PALab) Resolve(ctx context.Context) ([]netip.Addr, error) {
	if p.BIND == nil {
		return nil, errors.New("lab: the DNS server is stopped")
	}
	out, err := p.BIND.Dig(ctx, p.Inet, PAName, "AAAA")
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for _, line := range strings.Fields(string(out)) {
		a, err := netip.ParseAddr(line)
		if err != nil {
			return nil, fmt.Errorf("lab: dig answered %q", out)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// PAEdgeConfig renders the edge's PA-mode configuration: both uplinks
// probed with the profile and without BGP, NAT44 to ISP-A's link address
// and to ISP-B's interface address, the NPTv6 backend (ebpf or kernel,
// pinPath for ebpf), and DNS for www with the key in keyFile. The hold-down
// does not grow (hold_down_max = hold_down), so repeated faults are alike.
func PAEdgeConfig(profile, backend, pinPath, keyFile, stateDir string) string {
	pin := ""
	if pinPath != "" {
		pin = ", pin_path: " + pinPath
	}
	return fmt.Sprintf(`# multihomed lab edge in PA mode: documentation prefixes, ULA inside.
profile: lab
node: {router_id: %[1]s, asn: %[2]d}
site:
  mode: pa
  internal_prefix: "%[3]s"
  internal_prefix_ipv4: %[4]s
nptv6: {backend: %[5]s%[6]s}
uplinks:
  - name: isp-a
    interface: eth-a
    gateway: "%[7]s"
    gateway_ipv4: %[8]s
    pa_prefix: "%[9]s"
    nat44: %[10]s
%[11]s  - name: isp-b
    interface: eth-b
    gateway: "%[12]s"
    gateway_ipv4: %[13]s
    pa_prefix: "%[14]s"
    nat44: interface
%[11]sdns:
  zone: %[15]s
  server: "[%[16]s]:%[17]d"
  tsig: {name: %[18]s, secret_file: %[19]s}
  ttl: 30s
  hosts:
    - {name: %[20]s, internal: "%[21]s"}
`, EdgeAAddr4, ASNEdge, PAInternal, PAInside4, backend, pin,
		ISPAAddr6, ISPAAddr4, PAPrefixA, EdgeAAddr4, HealthBlock(profile),
		ISPBAddr6, ISPBAddr4, PAPrefixB,
		PAZone, DNSServerAddr6, PAServerPort, PAKeyName, keyFile, PAHost, PAWWW) + ControllerBlock(profile, stateDir, true)
}

// MountBPFFS mounts a bpffs of its own on dir (the eBPF backend's pins of
// one daemon); the returned function unmounts it.
func MountBPFFS(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		return nil, fmt.Errorf("lab: mount bpffs on %s: %w", dir, err)
	}
	return func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }, nil
}

// WriteKeyFile writes secret as a TSIG key file (tsig-keygen's format) at
// dir/tsig.key, mode 0600, and returns its path.
func WriteKeyFile(dir string, secret []byte) (string, error) {
	path := filepath.Join(dir, "tsig.key")
	text := fmt.Sprintf("key %q {\n\talgorithm hmac-sha256;\n\tsecret %q;\n};\n", PAKeyName, base64.StdEncoding.EncodeToString(secret))
	return path, os.WriteFile(path, []byte(text), 0o600)
}

package config

import (
	"net/netip"
	"time"
)

// Mode says how the site is addressed (DESIGN.md section 1).
type Mode string

const (
	// ModePI: the site owns provider-independent prefixes and announces
	// them to every healthy ISP over BGP.
	ModePI Mode = "pi"
	// ModePA: hosts use a ULA prefix inside; each uplink translates it into
	// the PA prefix its ISP delegated (NPTv6, RFC 6296), and DNS publishes
	// the translations of the usable uplinks. Nothing is announced.
	ModePA Mode = "pa"
)

// NAT44 is an uplink's IPv4 source NAT in PA mode.
type NAT44 struct {
	// Source is the address flows leaving through the uplink take; the
	// zero Addr takes the interface's own address when each flow starts
	// (masquerade, for DHCP or PPPoE uplinks).
	Source netip.Addr
}

// NPTv6Backend selects the translator's datapath.
type NPTv6Backend string

const (
	// NPTv6EBPF runs the translator as eBPF programs on each uplink's tc
	// hooks (needs a bpffs mount on /sys/fs/bpf).
	NPTv6EBPF NPTv6Backend = "ebpf"
	// NPTv6Kernel uses the kernel's ip6t_NPT target through ip6tables.
	NPTv6Kernel NPTv6Backend = "kernel"
)

// NPTv6 configures the PA-mode translator.
type NPTv6 struct {
	// Backend is ebpf (the default) or kernel.
	Backend NPTv6Backend
	// PinPath is the eBPF backend's bpffs directory (empty: the backend's
	// default, /sys/fs/bpf/multihomed/nptv6).
	PinPath string
}

// DefaultDNSTTL is the TTL of the published AAAA records: short, because
// resolvers keep handing out a failed uplink's address until it expires.
const DefaultDNSTTL = 30 * time.Second

// DNS configures the RFC 2136 updates that keep the published hosts' AAAA
// records listing only addresses reachable through usable uplinks.
type DNS struct {
	// Zone is the zone updated, as written (such as site.example).
	Zone string
	// Server is the zone's primary, address:port (port 53 when the file
	// gives an address alone).
	Server netip.AddrPort
	// KeyName and Algorithm name the TSIG key as the server knows it.
	KeyName, Algorithm string
	// Secret is the decoded TSIG secret read from SecretFile.
	Secret Secret
	// SecretFile is where Secret was read from.
	SecretFile string
	// TTL of the published records.
	TTL time.Duration
	// Hosts are the published names.
	Hosts []DNSHost
}

// DNSHost is one published name and its internal address.
type DNSHost struct {
	// Name is relative to the zone ("www"), absolute ("www.site.example."),
	// or "@" for the apex.
	Name string
	// Internal is inside site.internal_prefix.
	Internal netip.Addr
}

// SpeakerView returns c with only the uplinks that have a BGP session: what
// the BGP speaker runs. In PI mode every uplink has one; in PA mode an ISP
// may have none. The result shares c's values and must not be changed.
func (c *Config) SpeakerView() *Config {
	v := *c
	v.Uplinks = nil
	for _, u := range c.Uplinks {
		if len(u.BGP.Sessions()) > 0 {
			v.Uplinks = append(v.Uplinks, u)
		}
	}
	return &v
}

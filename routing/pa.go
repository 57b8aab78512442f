package routing

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// PA mode's datapath types (DESIGN.md section 1): what the controller
// decides and reports for the NPTv6 translator, the IPv4 source NAT, the
// return-path marking and the DNS runner. The packages that apply them
// (nptv6, nat44, returnpath, dnsupdate) name them with aliases; they live
// here so that the controller and the API use them without linking those
// packages' netlink, eBPF and DNS libraries.

// NPTMapping is one NPTv6 prefix pair on one uplink (nptv6.Mapping):
// packets leaving through Interface with a source inside Internal leave
// with that source moved into External, and packets arriving on Interface
// for an address inside External are delivered to the matching address
// inside Internal.
type NPTMapping struct {
	// Interface is the uplink device the translator runs on, for example "isp-a".
	Interface string
	// Internal is the site's internal prefix, usually a ULA (RFC 4193) such as
	// fd7a:5e1d:9c00::/48. At most /64.
	Internal netip.Prefix
	// External is the provider-assigned prefix used on this uplink, such as
	// 2001:db8:1001::/48. At most /64. It may differ in length from Internal
	// (RFC 6296 section 3.1); see nptv6.Translator.
	External netip.Prefix
	// Hairpin makes a packet from inside that is addressed to an address in
	// External turn around at the translator and go back inside, translated in
	// both addresses (RFC 6296 section 4.3).
	Hairpin bool
}

// String renders the mapping the way nptv6ctl prints it.
func (m NPTMapping) String() string {
	s := fmt.Sprintf("%s %s <-> %s", m.Interface, m.Internal, m.External)
	if m.Hairpin {
		s += " hairpin"
	}
	return s
}

// NPTCounters are the counters of one mapping since it was installed
// (nptv6.Counters).
type NPTCounters struct {
	Mapping NPTMapping
	// OutPackets and OutBytes count packets whose source was translated on
	// the way out (hairpinned packets included).
	OutPackets, OutBytes uint64
	// InPackets and InBytes count packets whose destination was translated
	// on the way in.
	InPackets, InBytes uint64
	// OutDrops and InDrops count packets of this mapping dropped because RFC
	// 6296 forbids translating them (see nptv6.ErrSubnetFFFF,
	// ErrIIDAllOnes, ErrZeroIID). The Kernel backend cannot count them and
	// reports 0.
	OutDrops, InDrops uint64
	// Hairpinned counts outbound packets turned back inside (RFC 6296
	// section 4.3).
	Hairpinned uint64
}

// NATRule is the IPv4 source NAT of one uplink for one inside prefix
// (nat44.Rule): IPv4 packets leaving through Device with a source inside
// Inside leave with Source, or with Device's own address when Source is
// not set (masquerade).
type NATRule struct {
	// Device is the uplink's interface name, matched on output (oifname).
	Device string
	// Inside is the site's IPv4 prefix translated, such as 192.0.2.0/24.
	Inside netip.Prefix
	// Source is the address flows take; the zero Addr means masquerade:
	// the interface's primary address at the time each flow starts. Use
	// masquerade for a dynamic uplink address (DHCP, PPPoE).
	Source netip.Addr
}

// Masquerade reports whether the rule takes the device's address.
func (r NATRule) Masquerade() bool { return !r.Source.IsValid() }

// String renders the rule the way logs and errors show it.
func (r NATRule) String() string {
	to := "masquerade"
	if !r.Masquerade() {
		to = "snat to " + r.Source.String()
	}
	return fmt.Sprintf("oifname %s ip saddr %s %s", r.Device, r.Inside, to)
}

// ReturnUplink is one uplink whose inbound connections are answered
// through it (returnpath.Uplink).
type ReturnUplink struct {
	// Device is the uplink's interface: connections opened by packets
	// arriving on it are remembered.
	Device string
	// Mark is the firewall mark given to their replies. A fwmark rule must
	// route that mark through this uplink only (the uplink's probe table,
	// fib.ProbeTables); without one the mark changes nothing.
	Mark uint32
}

// DNSStatus is what the DNS runner reports (dnsupdate.Status): per host
// what is desired and published, and how the last attempt went.
type DNSStatus struct {
	// Zone is the zone updated, fully qualified.
	Zone string
	// Hosts, in config order.
	Hosts []DNSHostStatus
	// Converged is true when the last attempt succeeded for the current
	// desired state: the server holds it.
	Converged bool
	// LastAttempt is when the last attempt finished; zero before the first.
	LastAttempt time.Time
	// LastErr is the last attempt's error (nil when it succeeded). It wraps
	// one of dnsupdate's sentinel errors.
	LastErr error
	// Failures counts consecutive failed attempts.
	Failures int
	// NextRetry is when the next attempt is due after a failure; zero when
	// none is scheduled.
	NextRetry time.Time
}

// DNSHostStatus is one published host's records (dnsupdate.HostStatus).
type DNSHostStatus struct {
	// Name as configured.
	Name string
	// Desired is the AAAA set handed over by the last SetDesired.
	Desired []netip.Addr
	// Published is what the server held at the last successful read or
	// update; valid only when Known.
	Published []netip.Addr
	// Known is false until the server has been read once.
	Known bool
}

// AddrSet returns addrs sorted with duplicates removed, as a new slice: the
// one form of a host's AAAA set that the controller decides, the DNS
// runner hands on and status shows, so equal sets compare equal.
func AddrSet(addrs []netip.Addr) []netip.Addr {
	s := slices.Clone(addrs)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}

package config

import (
	"net/netip"
	"time"

	"github.com/multihomed/multihomed/routing"

	"github.com/multihomed/multihomed/health"
)

// Config is a complete, validated configuration. Values are produced by Load
// or Parse; a zero Config is not valid.
type Config struct {
	// Log sets the daemon's logging.
	Log Log
	// Profile selects the import filter profile: production or lab.
	Profile Profile
	// Node identifies this BGP speaker.
	Node Node
	// Site lists the prefixes the site owns and announces.
	Site Site
	// BGP holds speaker-wide BGP settings.
	BGP BGPGlobal
	// Filters holds the bogon lists used by import filtering. Profile lab has
	// already been applied to them.
	Filters Filters
	// Uplinks lists the ISPs, in configuration order.
	Uplinks []Uplink
	// Egress says how the site's outbound traffic is routed.
	Egress Egress
	// Controller tunes the decision loop.
	Controller Controller
	// IBGP lists internal routers that receive a health-weighted default.
	IBGP IBGP
	// API configures the NOC gRPC API.
	API API
	// Metrics configures the Prometheus endpoint.
	Metrics Metrics
	// NPTv6 selects the PA-mode translator's datapath (PA mode only).
	NPTv6 NPTv6
	// DNS keeps the published hosts' AAAA records in step with the uplinks
	// (PA mode only; nil: no DNS updates).
	DNS *DNS
	// Debug holds developer tools (pprof), off by default.
	Debug Debug
	// notes are the advice validation left (Advice returns them).
	notes []Problem
}

// EgressMode selects how default routes over several uplinks are installed.
type EgressMode string

const (
	// EgressFailover installs one default per usable uplink with increasing
	// metrics: the first healthy uplink in config order carries the traffic.
	EgressFailover EgressMode = "failover"
	// EgressECMP installs one multipath default over every healthy uplink,
	// weighted by uplinks[].weight.
	EgressECMP EgressMode = "ecmp"
)

// Egress configures the kernel default routes the daemon owns.
type Egress struct {
	// Mode is failover or ecmp.
	Mode EgressMode
	// Table is the routing table the defaults go into (254 is main).
	Table int
	// Protocol is the route protocol number that marks routes as ours.
	Protocol int
	// Metric is the metric of the first uplink's default in failover mode;
	// the next uplinks get Metric+10, +20, ...; a worse egress tier adds
	// 1000 per tier (controller.EgressMetric).
	Metric int
}

// Controller tunes the decision loop.
type Controller struct {
	// StartupWait bounds the wait for the first health verdicts before the
	// first announcement.
	StartupWait time.Duration
	// HoldDown is the first hold-down after an uplink gets worse; it doubles
	// with each further worsening up to HoldDownMax, and resets after a
	// HoldDownMax without one.
	HoldDown time.Duration
	// HoldDownMax caps the hold-down.
	HoldDownMax time.Duration
	// DrainGrace is how long a drained uplink announces with
	// GRACEFUL_SHUTDOWN before the withdrawal.
	DrainGrace time.Duration
	// Resync is the period of a full reconcile even without events.
	Resync time.Duration
	// StateDir keeps operator overrides across restarts.
	StateDir string
	// HistorySize bounds the event history.
	HistorySize int
	// FailStatic keeps announcing on every uplink with an established
	// session when the ladder would withdraw from all of them.
	FailStatic bool
}

// IBGP configures the internal routers that learn a default route from
// this edge, with a LOCAL_PREF reflecting uplink health.
type IBGP struct {
	// LocalPrefUp is sent while at least one uplink is up.
	LocalPrefUp uint32
	// LocalPrefDegraded is sent while the best usable uplink is degraded.
	LocalPrefDegraded uint32
	// Advertise says what the core peers hear: the originated defaults
	// only, or also the routes of the import: full uplinks, each with the
	// LOCAL_PREF of its own uplink's health (docs/configuration.md).
	Advertise IBGPAdvertise
	// Peers are the internal routers (same ASN as node.asn).
	Peers []IBGPPeer
}

// IBGPPeer is one internal router.
type IBGPPeer struct {
	// Neighbor is the router's address; its family is the session's.
	Neighbor netip.Addr
	// LocalAddress is our address for the session (optional).
	LocalAddress netip.Addr
	// Password is the TCP-MD5 key, if any.
	Password Secret
	// HoldTime and ConnectRetry are the session timers.
	HoldTime, ConnectRetry time.Duration
	// Role says what the peer is: a core router (receives our default,
	// sends us nothing we accept) or another edge of the site running
	// multihomed (exchanges uplink state and defaults; docs/deployment.md).
	Role IBGPRole
	// Interface is where an edge peer is reachable: its default becomes
	// our last-resort egress through it. Empty for a core peer.
	Interface string
}

// IBGPRole is the role of an internal BGP peer.
type IBGPRole string

const (
	// RoleCore is an internal router that only receives our default.
	RoleCore IBGPRole = "core"
	// RoleEdge is another edge router of the same site running multihomed.
	RoleEdge IBGPRole = "edge"
)

// IBGPAdvertise is what this edge advertises to its core peers.
type IBGPAdvertise string

const (
	// AdvertiseDefault sends only the originated ::/0 and 0.0.0.0/0.
	AdvertiseDefault IBGPAdvertise = "default"
	// AdvertiseFull also sends the routes accepted from import: full
	// uplinks, with next hop self and LOCAL_PREF from their uplink's
	// health; a down uplink's routes are withdrawn from the core.
	AdvertiseFull IBGPAdvertise = "full"
)

// EdgePeers returns the ibgp peers whose role is edge, in configuration
// order.
func (i IBGP) EdgePeers() []IBGPPeer {
	var out []IBGPPeer
	for _, p := range i.Peers {
		if p.Role == RoleEdge {
			out = append(out, p)
		}
	}
	return out
}

// DownAction says what a down uplink announces.
type DownAction string

const (
	// DownWithdraw withdraws the site prefixes from a down uplink.
	DownWithdraw DownAction = "withdraw"
	// DownPrepend keeps announcing with the maximum prepend, for ISPs whose
	// customers must keep a (last-resort) path.
	DownPrepend DownAction = "prepend"
)

// Degraded holds the extra attributes of a degraded uplink's announcements.
type Degraded struct {
	// Prepend is added to the uplink's base prepend (the sum is capped at
	// MaxPrepend).
	Prepend uint8
	// Communities are added while degraded (for example an ISP's
	// lower-preference community).
	Communities []routing.Community
	// MED, when set, replaces the base MED while degraded.
	MED *uint32
}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string
	// Format is text or json.
	Format string
}

// Profile selects how strict the import filters are.
type Profile string

const (
	// ProfileProduction applies every bogon check.
	ProfileProduction Profile = "production"
	// ProfileLab accepts documentation prefixes (RFC 3849, RFC 5737, RFC 9637)
	// and documentation ASNs (RFC 5398) so a lab built from them works; it
	// relaxes nothing else.
	ProfileLab Profile = "lab"
)

// Node identifies the local BGP speaker.
type Node struct {
	// RouterID is the BGP identifier, an IPv4 address (RFC 6286).
	RouterID netip.Addr
	// ASN is the site's autonomous system number; 4-byte ASNs are allowed.
	ASN uint32
}

// Site holds the site's own address space.
type Site struct {
	// Mode is pi (the site owns Prefixes and announces them) or pa (hosts
	// use InternalPrefix, translated into each uplink's PAPrefix).
	Mode Mode
	// Prefixes are the provider-independent prefixes announced to the ISPs
	// (PI mode only).
	Prefixes []netip.Prefix
	// InternalPrefix is the site's ULA prefix in PA mode.
	InternalPrefix netip.Prefix
	// InternalPrefixIPv4, in PA mode, is the site's inside IPv4 prefix,
	// source-NATed by every uplink with NAT44 (invalid: no IPv4).
	InternalPrefixIPv4 netip.Prefix
}

// BGPGlobal holds speaker-wide settings.
type BGPGlobal struct {
	// ListenPort is the TCP port to accept sessions on; -1 (the default)
	// only dials out, which also makes TCP-MD5 and GTSM fail closed on the
	// dialing socket.
	ListenPort int32
	// GracefulRestart advertises the RFC 4724 capability so a daemon restart
	// does not make ISPs drop the site's routes.
	GracefulRestart bool
	// RestartTime is the time ISPs keep our routes after a restart.
	RestartTime time.Duration
	// Install puts the routes accepted from import-full uplinks into a
	// kernel table; its zero value installs nothing.
	Install Install
}

// Install is bgp.install: where the accepted routes of uplinks with import
// full go in the kernel. Each route points at its uplink's nexthop group,
// so moving all of an uplink's routes is one nexthop change.
type Install struct {
	// Table is the routing table; 0 installs nothing.
	Table int
	// Protocol marks the routes and nexthops as the installer's.
	Protocol int
}

// Filters holds the import bogon lists in force.
type Filters struct {
	// BogonPrefixes are rejected, with anything more specific, from ISPs
	// with import full. IPv6 outside 2000::/3 is always rejected too.
	BogonPrefixes []netip.Prefix
	// BogonASNs: a path containing any of these is rejected.
	BogonASNs []ASNRange
}

// ASNRange is an inclusive range of AS numbers.
type ASNRange struct {
	// First and Last bound the range; First <= Last.
	First, Last uint32
}

// Contains reports whether asn is inside r.
func (r ASNRange) Contains(asn uint32) bool { return r.First <= asn && asn <= r.Last }

// ImportMode says which routes an uplink's session accepts (RFC 8212:
// nothing unless configured).
type ImportMode string

const (
	// ImportNone accepts nothing.
	ImportNone ImportMode = "none"
	// ImportDefault accepts only ::/0 and 0.0.0.0/0.
	ImportDefault ImportMode = "default"
	// ImportFull accepts everything that passes the bogon and sanity filters.
	ImportFull ImportMode = "full"
)

// Uplink is one ISP connection.
type Uplink struct {
	// Name identifies the uplink in logs, metrics and the API.
	Name string
	// Interface is the local network device facing the ISP.
	Interface string
	// BGP configures the eBGP session(s) with the ISP.
	BGP UplinkBGP
	// Gateway and GatewayIPv4 are the next hops of the egress defaults; by
	// default the BGP neighbor of that family (the ISP router on the link).
	Gateway, GatewayIPv4 netip.Addr
	// Weight is the uplink's share in ECMP egress.
	Weight int
	// Health configures probing through the uplink; nil means no probes
	// (the uplink counts as up while a BGP session is established).
	Health *health.Config
	// Degraded is what a degraded verdict adds to the announcements.
	Degraded Degraded
	// DownAction is what a down verdict does to the announcements.
	DownAction DownAction
	// PAPrefix is the prefix this uplink's ISP delegated (PA mode).
	PAPrefix netip.Prefix
	// NAT44 is the uplink's IPv4 source NAT (PA mode; nil: none).
	NAT44 *NAT44
}

// Gateways returns the uplink's egress next hops (IPv6 first), skipping
// unset ones.
func (u Uplink) Gateways() []netip.Addr {
	var out []netip.Addr
	for _, g := range []netip.Addr{u.Gateway, u.GatewayIPv4} {
		if g.IsValid() {
			out = append(out, g)
		}
	}
	return out
}

// ReservedLargeLocal1Min and ReservedLargeLocal1Max bound the first local
// values of the large communities node.asn:N:* that the speaker puts on
// its own routes (the not-inside mark, the export marks) and strips on
// export, so uplinks[].bgp.large_communities may not use them.
const (
	ReservedLargeLocal1Min = 2
	ReservedLargeLocal1Max = 4
)

// UplinkBGP configures the eBGP sessions with one ISP. Neighbor's family
// carries that family's site prefixes; NeighborIPv4 (optional, with an IPv6
// Neighbor) adds a second session carrying the IPv4 site prefixes.
type UplinkBGP struct {
	// PeerASN is the ISP's AS number.
	PeerASN uint32
	// Neighbor is the ISP router's address.
	Neighbor netip.Addr
	// LocalAddress is our address for the session (optional).
	LocalAddress netip.Addr
	// NeighborIPv4 is the ISP router's IPv4 address for a second session.
	NeighborIPv4 netip.Addr
	// LocalAddressIPv4 is our address for the IPv4 session (optional).
	LocalAddressIPv4 netip.Addr
	// Password is the TCP-MD5 (RFC 2385) key, from password or password_file.
	Password Secret
	// PasswordFile is where Password was read from, if anywhere.
	PasswordFile string
	// HoldTime is the proposed hold time (0 disables keepalives).
	HoldTime time.Duration
	// Keepalive is the keepalive interval.
	Keepalive time.Duration
	// ConnectRetry is the wait between connection attempts.
	ConnectRetry time.Duration
	// TTLSecurity enables GTSM (RFC 5082): packets must arrive with TTL 255.
	TTLSecurity bool
	// Import selects what the session accepts.
	Import ImportMode
	// MaxPrefixes tears the session down when the ISP sends more prefixes
	// than this in one address family.
	MaxPrefixes uint32
	// MaxPrefixRestart is how long a session closed for exceeding
	// MaxPrefixes stays down before it is opened again; 0 keeps it down
	// until an operator resets the uplink.
	MaxPrefixRestart time.Duration
	// Communities are added to every announcement to this ISP (RFC 1997).
	Communities []routing.Community
	// LargeCommunities are added to every announcement (RFC 8092).
	LargeCommunities []routing.LargeCommunity
	// MED, when set, is sent as MULTI_EXIT_DISC.
	MED *uint32
	// Prepend is the number of extra copies of our ASN in the AS path.
	Prepend uint8
}

// Sessions returns the neighbor addresses of the uplink's sessions with the
// local address each uses (invalid when unset); none for an uplink without
// a bgp block (PA mode).
func (b UplinkBGP) Sessions() []Session {
	if !b.Neighbor.IsValid() {
		return nil // a PA-mode uplink without BGP
	}
	out := []Session{{Neighbor: b.Neighbor, Local: b.LocalAddress}}
	if b.NeighborIPv4.IsValid() {
		out = append(out, Session{Neighbor: b.NeighborIPv4, Local: b.LocalAddressIPv4})
	}
	return out
}

// Session is one BGP session of an uplink.
type Session struct {
	// Neighbor is the peer's address; its family is the session's family.
	Neighbor netip.Addr
	// Local is our address, or invalid to let the kernel choose.
	Local netip.Addr
}

// MaxPrepend caps AS-path prepending. Longer paths buy nothing (most
// networks already prefer any other path at this length) and some ISPs drop
// routes with very long paths.
const MaxPrepend = 10

// DefaultMaxPrefixRestart is uplinks[].bgp.max_prefix_restart when left
// out: long enough for an ISP's leak to be noticed and fixed, short enough
// that the uplink does not stay lost overnight.
const DefaultMaxPrefixRestart = 5 * time.Minute

package config

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Defaults of the api and metrics sections.
const (
	// DefaultAPISocket is where the NOC API listens unless api.socket says
	// otherwise.
	DefaultAPISocket = "/run/multihomed/api.sock"
	// DefaultAPISocketMode lets the owner and the socket's group connect.
	DefaultAPISocketMode os.FileMode = 0o660
	// DefaultWatchBuffer is how many events a WatchEvents client may fall
	// behind before it is sent a lag marker.
	DefaultWatchBuffer = 256
	// DefaultMaxStreamsPerPrincipal is how many WatchEvents streams one
	// caller may hold open at once: a dashboard and a few operators' follows.
	DefaultMaxStreamsPerPrincipal = 8
	// DefaultMetricsAddress keeps the metrics endpoint on loopback.
	DefaultMetricsAddress = "127.0.0.1:9479"
)

// API configures the NOC gRPC API (docs/api.md).
type API struct {
	// Socket is the unix socket path; empty turns the socket off.
	Socket string
	// SocketMode is the socket's permission bits; never world-accessible.
	SocketMode os.FileMode
	// SocketGroup, when set, is the group (name or number) given the socket,
	// so its members can connect.
	SocketGroup string
	// TCP, when set, adds a TLS listener with client certificates.
	TCP *APITCP
	// WatchBuffer bounds each WatchEvents client's backlog.
	WatchBuffer int
	// MaxStreamsPerPrincipal bounds the WatchEvents streams one caller (a
	// certificate's name, a socket peer's uid) holds open at once.
	MaxStreamsPerPrincipal int
}

// APITCP is the API's TCP listener. TLS is mandatory; client certificates,
// verified against ClientCAFile, map to roles by Operators and Viewers.
type APITCP struct {
	// Address is IP:port ([v6]:port for IPv6).
	Address netip.AddrPort
	// CertFile and KeyFile are the server's certificate chain and key (PEM).
	CertFile, KeyFile string
	// ClientCAFile holds the CAs client certificates must chain to (PEM).
	ClientCAFile string
	// Operators may call everything; Viewers only the read calls.
	Operators, Viewers []Principal
}

// PrincipalKind says which part of a client certificate a Principal
// matches.
type PrincipalKind string

// Principal kinds: the subject common name or a subject alternative name.
const (
	PrincipalCN    PrincipalKind = "cn"
	PrincipalDNS   PrincipalKind = "dns"
	PrincipalEmail PrincipalKind = "email"
	PrincipalURI   PrincipalKind = "uri"
	PrincipalIP    PrincipalKind = "ip"
)

// Principal names a client certificate by its subject CN or one of its
// SANs, written kind:value, such as cn:noc-admin or dns:noc1.example.net.
type Principal struct {
	Kind  PrincipalKind
	Value string
}

// String returns the kind:value form.
func (p Principal) String() string { return string(p.Kind) + ":" + p.Value }

// ParsePrincipal parses kind:value with kind one of cn, dns, email, uri, ip.
func ParsePrincipal(s string) (Principal, error) {
	kind, value, ok := strings.Cut(s, ":")
	if !ok || value == "" {
		return Principal{}, fmt.Errorf("%q is not kind:value; write cn:NAME, dns:NAME, email:ADDRESS, uri:URI or ip:ADDRESS", s)
	}
	p := Principal{Kind: PrincipalKind(strings.ToLower(kind)), Value: value}
	switch p.Kind {
	case PrincipalCN, PrincipalDNS, PrincipalEmail, PrincipalURI:
	case PrincipalIP:
		a, err := netip.ParseAddr(value)
		if err != nil {
			return Principal{}, fmt.Errorf("%q: %q is not an IP address", s, value)
		}
		p.Value = a.String()
	default:
		return Principal{}, fmt.Errorf("%q: kind %q is not one of cn, dns, email, uri, ip", s, kind)
	}
	return p, nil
}

// Metrics configures the Prometheus endpoint (/metrics, /healthz, /readyz).
type Metrics struct {
	// Address is IP:port; the zero value turns the endpoint off.
	Address netip.AddrPort
}

type rawAPI struct {
	Socket      *string    `mapstructure:"socket"`
	SocketMode  string     `mapstructure:"socket_mode"`
	SocketGroup string     `mapstructure:"socket_group"`
	TCP         *rawAPITCP `mapstructure:"tcp"`
	WatchBuffer *int64     `mapstructure:"watch_buffer"`
	MaxStreams  *int64     `mapstructure:"max_streams_per_principal"`
}

type rawAPITCP struct {
	Address      string   `mapstructure:"address"`
	CertFile     string   `mapstructure:"cert_file"`
	KeyFile      string   `mapstructure:"key_file"`
	ClientCAFile string   `mapstructure:"client_ca_file"`
	Operators    []string `mapstructure:"operators"`
	Viewers      []string `mapstructure:"viewers"`
}

type rawMetrics struct {
	Address *string `mapstructure:"address"`
}

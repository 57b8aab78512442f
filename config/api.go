package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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

func (c *checker) api(r rawAPI) API {
	a := API{Socket: DefaultAPISocket, SocketMode: DefaultAPISocketMode, SocketGroup: r.SocketGroup, WatchBuffer: DefaultWatchBuffer}
	if r.Socket != nil {
		a.Socket = *r.Socket
		if a.Socket != "" && !filepath.IsAbs(a.Socket) {
			c.add("api.socket", "%q is not an absolute path; write one such as %s, or \"\" to turn the socket off", a.Socket, DefaultAPISocket)
		}
	}
	if r.SocketMode != "" {
		m, err := strconv.ParseUint(r.SocketMode, 8, 32)
		switch {
		case err != nil || m > 0o777:
			c.add("api.socket_mode", "%q is not an octal mode; write one such as \"0660\"", r.SocketMode)
		case m&0o007 != 0:
			c.add("api.socket_mode", "%q lets every local user drive the daemon; drop the bits for others (such as \"0660\") and use socket_group", r.SocketMode)
		default:
			a.SocketMode = os.FileMode(m)
		}
	}
	if r.WatchBuffer != nil {
		if w := *r.WatchBuffer; w < 1 || w > 65536 {
			c.add("api.watch_buffer", "%d is out of range 1-65536", w)
		} else {
			a.WatchBuffer = int(w)
		}
	}
	if r.TCP != nil {
		a.TCP = c.apiTCP(*r.TCP)
	}
	return a
}

func (c *checker) apiTCP(r rawAPITCP) *APITCP {
	t := &APITCP{CertFile: r.CertFile, KeyFile: r.KeyFile, ClientCAFile: r.ClientCAFile}
	ap, err := netip.ParseAddrPort(r.Address)
	switch {
	case r.Address == "":
		c.add("api.tcp.address", "missing; set IP:port such as [2001:db8::1]:50051, or remove api.tcp")
	case err != nil || ap.Port() == 0:
		c.add("api.tcp.address", "%q is not IP:port; write 192.0.2.1:50051 or [2001:db8::1]:50051", r.Address)
	default:
		t.Address = ap
	}
	for key, v := range map[string]string{"cert_file": r.CertFile, "key_file": r.KeyFile} {
		if v == "" {
			c.add("api.tcp."+key, "missing; TCP needs TLS: set the PEM file of the server's certificate and key")
		}
	}
	if r.ClientCAFile == "" {
		c.add("api.tcp.client_ca_file", "missing; set the CA that signs NOC client certificates (clients are told apart by them: without it nobody could be authorized)")
	}
	for i, s := range r.Operators {
		if p, err := ParsePrincipal(s); err != nil {
			c.add(fmt.Sprintf("api.tcp.operators[%d]", i), "%v", err)
		} else {
			t.Operators = append(t.Operators, p)
		}
	}
	for i, s := range r.Viewers {
		if p, err := ParsePrincipal(s); err != nil {
			c.add(fmt.Sprintf("api.tcp.viewers[%d]", i), "%v", err)
		} else {
			t.Viewers = append(t.Viewers, p)
		}
	}
	if len(r.Operators)+len(r.Viewers) == 0 {
		c.add("api.tcp", "no operators or viewers listed; every client would be refused: list certificates such as cn:noc-admin under operators or viewers")
	}
	return t
}

func (c *checker) metrics(r rawMetrics) Metrics {
	s := DefaultMetricsAddress
	if r.Address != nil {
		s = *r.Address
	}
	if s == "" {
		return Metrics{}
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		c.add("metrics.address", "%q is not IP:port; write one such as %s, or \"\" to turn the endpoint off", s, DefaultMetricsAddress)
		return Metrics{}
	}
	return Metrics{Address: ap}
}

package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
)

// api checks the NOC API section. The TLS files are only named here; the
// api package reads them when it starts the listener.
func (c *checker) api(r rawAPI) API {
	a := API{Socket: DefaultAPISocket, SocketMode: DefaultAPISocketMode, SocketGroup: r.SocketGroup, WatchBuffer: DefaultWatchBuffer, MaxStreamsPerPrincipal: DefaultMaxStreamsPerPrincipal}
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
	a.WatchBuffer = inRange(c, "api.watch_buffer", r.WatchBuffer, 1, 65536, a.WatchBuffer)
	a.MaxStreamsPerPrincipal = inRange(c, "api.max_streams_per_principal", r.MaxStreams, 1, 1024, a.MaxStreamsPerPrincipal)
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
	c.fileRef("api.tcp.cert_file", r.CertFile)
	c.fileRef("api.tcp.key_file", r.KeyFile)
	c.fileRef("api.tcp.client_ca_file", r.ClientCAFile)
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

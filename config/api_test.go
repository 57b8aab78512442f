package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAPIDefaults(t *testing.T) {
	cfg, err := Parse("test", []byte(base), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := API{Socket: DefaultAPISocket, SocketMode: 0o660, WatchBuffer: DefaultWatchBuffer, MaxStreamsPerPrincipal: DefaultMaxStreamsPerPrincipal}
	if d := cmp.Diff(want, cfg.API); d != "" {
		t.Errorf("api defaults (-want +got):\n%s", d)
	}
	if got := cfg.Metrics.Address.String(); got != DefaultMetricsAddress {
		t.Errorf("metrics.address = %s; want %s", got, DefaultMetricsAddress)
	}
}

func TestAPISections(t *testing.T) {
	text := base + `
api:
  socket: /tmp/mh.sock
  socket_mode: "0600"
  socket_group: noc
  watch_buffer: 16
  max_streams_per_principal: 3
  tcp:
    address: "[2001:db8::1]:50051"
    cert_file: /etc/multihomed/tls/server.pem
    key_file: /etc/multihomed/tls/server.key
    client_ca_file: /etc/multihomed/tls/noc-ca.pem
    operators: [cn:noc-admin, "dns:ops.example.net"]
    viewers: ["IP:2001:db8:0::5", "uri:spiffe://example.net/dash"]
metrics: {address: ""}
`
	cfg, err := Parse("test", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := API{Socket: "/tmp/mh.sock", SocketMode: 0o600, SocketGroup: "noc", WatchBuffer: 16, MaxStreamsPerPrincipal: 3, TCP: &APITCP{
		Address:  netip.MustParseAddrPort("[2001:db8::1]:50051"),
		CertFile: "/etc/multihomed/tls/server.pem", KeyFile: "/etc/multihomed/tls/server.key", ClientCAFile: "/etc/multihomed/tls/noc-ca.pem",
		Operators: []Principal{{PrincipalCN, "noc-admin"}, {PrincipalDNS, "ops.example.net"}},
		Viewers:   []Principal{{PrincipalIP, "2001:db8::5"}, {PrincipalURI, "spiffe://example.net/dash"}},
	}}
	if d := cmp.Diff(want, cfg.API, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("api (-want +got):\n%s", d)
	}
	if cfg.Metrics.Address.IsValid() {
		t.Errorf("metrics.address \"\" should turn the endpoint off; got %s", cfg.Metrics.Address)
	}
}

func TestAPIInvalid(t *testing.T) {
	tests := []struct{ name, add, path, msg string }{
		{"relative socket", "api: {socket: run/api.sock}", "api.socket", "not an absolute path"},
		{"world mode", `api: {socket_mode: "0666"}`, "api.socket_mode", "every local user"},
		{"bad mode", `api: {socket_mode: "rw"}`, "api.socket_mode", "not an octal mode"},
		{"watch buffer", "api: {watch_buffer: 0}", "api.watch_buffer", "out of range"},
		{"streams per principal", "api: {max_streams_per_principal: 0}", "api.max_streams_per_principal", "out of range"},
		{"tcp no address", "api: {tcp: {cert_file: a, key_file: b, client_ca_file: c, viewers: [cn:x]}}", "api.tcp.address", "missing"},
		{"tcp bad address", "api: {tcp: {address: 'noc:50051', cert_file: a, key_file: b, client_ca_file: c, viewers: [cn:x]}}", "api.tcp.address", "not IP:port"},
		{"tcp no tls", "api: {tcp: {address: '192.0.2.1:50051', client_ca_file: c, viewers: [cn:x]}}", "api.tcp.cert_file", "TCP needs TLS"},
		{"tcp no key", "api: {tcp: {address: '192.0.2.1:50051', cert_file: a, client_ca_file: c, viewers: [cn:x]}}", "api.tcp.key_file", "TCP needs TLS"},
		{"tcp no ca", "api: {tcp: {address: '192.0.2.1:50051', cert_file: a, key_file: b, viewers: [cn:x]}}", "api.tcp.client_ca_file", "missing"},
		{"tcp no roles", "api: {tcp: {address: '192.0.2.1:50051', cert_file: a, key_file: b, client_ca_file: c}}", "api.tcp", "no operators or viewers"},
		{"bad principal", "api: {tcp: {address: '192.0.2.1:50051', cert_file: a, key_file: b, client_ca_file: c, operators: [noc]}}", "api.tcp.operators[0]", "not kind:value"},
		{"bad principal kind", "api: {tcp: {address: '192.0.2.1:50051', cert_file: a, key_file: b, client_ca_file: c, viewers: ['ou:x']}}", "api.tcp.viewers[0]", "not one of cn"},
		{"unknown api key", "api: {sokcet: /x}", "api.sokcet", `did you mean "socket"`},
		{"metrics address", "metrics: {address: localhost}", "metrics.address", "not IP:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test", []byte(base+"\n"+tt.add+"\n"), nil)
			assertProblem(t, err, tt.path, tt.msg)
		})
	}
}

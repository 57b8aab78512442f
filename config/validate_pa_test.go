package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// tsigSecretB64 is a 32-byte secret in base64, as tsig-keygen writes it.
const tsigSecretB64 = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg=="

// paBase is a minimal valid PA-mode configuration: ISP-A without BGP
// (health only), ISP-B with a BGP session for its default route; IPv4
// NATed; DNS with a key file at KEYFILE.
const paBase = `
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site:
  mode: pa
  internal_prefix: fd7a:5e1d:9c00::/48
  internal_prefix_ipv4: 192.0.2.0/24
uplinks:
  - name: isp-a
    interface: eth-a
    gateway: "2001:db8:1000:1::1"
    gateway_ipv4: 198.18.1.1
    pa_prefix: 2001:db8:1001::/48
    nat44: 198.18.1.2
    health: {targets: ['icmp://2001:db8:9000:1::10']}
  - name: isp-b
    interface: eth-b
    bgp: {peer_asn: 64502, neighbor: "2001:db8:2000:1::1", neighbor_ipv4: 198.18.2.1}
    pa_prefix: 2001:db8:2001::/48
    nat44: interface
nptv6: {backend: kernel}
dns:
  zone: site.example
  server: 192.0.2.53
  tsig: {name: mh-update, secret_file: KEYFILE}
  hosts:
    - {name: www, internal: "fd7a:5e1d:9c00:1::80"}
`

// paText returns paBase with its key file written (mode 0600) in a
// temporary directory.
func paText(t *testing.T, keyText string) string { return withKeyFile(t, paBase, keyText) }

// withKeyFile writes keyText to a key file (mode 0600) and names it in
// text where KEYFILE stands, if it does.
func withKeyFile(t *testing.T, text, keyText string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tsig.key")
	if err := os.WriteFile(f, []byte(keyText), 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(text, "KEYFILE", f)
}

func TestPAValid(t *testing.T) {
	// tsig-keygen's output: the key statement, the secret inside.
	keyText := "key \"mh-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + tsigSecretB64 + "\";\n};\n"
	cfg, err := Parse("test", []byte(paText(t, keyText)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Site.Mode != ModePA || cfg.Site.InternalPrefix != netip.MustParsePrefix("fd7a:5e1d:9c00::/48") || cfg.Site.InternalPrefixIPv4 != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("site = %+v", cfg.Site)
	}
	a, b := cfg.Uplinks[0], cfg.Uplinks[1]
	if a.PAPrefix != netip.MustParsePrefix("2001:db8:1001::/48") || a.NAT44 == nil || a.NAT44.Source != netip.MustParseAddr("198.18.1.2") {
		t.Errorf("uplinks[0] PA = %s %+v", a.PAPrefix, a.NAT44)
	}
	if len(a.BGP.Sessions()) != 0 {
		t.Errorf("uplinks[0] has no bgp block but sessions %v", a.BGP.Sessions())
	}
	if b.NAT44 == nil || b.NAT44.Source.IsValid() || b.Gateway != netip.MustParseAddr("2001:db8:2000:1::1") || b.GatewayIPv4 != netip.MustParseAddr("198.18.2.1") {
		t.Errorf("uplinks[1]: nat44 %+v gateways %s %s; want masquerade, gateways from the neighbors", b.NAT44, b.Gateway, b.GatewayIPv4)
	}
	if cfg.NPTv6.Backend != NPTv6Kernel {
		t.Errorf("nptv6 = %+v", cfg.NPTv6)
	}
	want := &DNS{Zone: "site.example", Server: netip.MustParseAddrPort("192.0.2.53:53"), KeyName: "mh-update", Algorithm: "hmac-sha256",
		Secret: NewSecret("secret-secret-secret-secret-32b"), TTL: DefaultDNSTTL,
		Hosts: []DNSHost{{Name: "www", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::80")}}}
	if d := cmp.Diff(want, cfg.DNS, cmp.AllowUnexported(Secret{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }), cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".SecretFile" }, cmp.Ignore())); d != "" {
		t.Errorf("dns (-want +got):\n%s", d)
	}
	if len(cfg.SpeakerView().Uplinks) != 1 || cfg.SpeakerView().Uplinks[0].Name != "isp-b" {
		t.Errorf("SpeakerView uplinks = %v; want isp-b only (isp-a has no bgp)", cfg.SpeakerView().Uplinks)
	}
	// The base64 secret alone is a key file too; PI is the default mode.
	cfg, err = Parse("test", []byte(paText(t, tsigSecretB64+"\n")), nil)
	if err != nil || cfg.DNS.Secret.Reveal() != "secret-secret-secret-secret-32b" {
		t.Fatalf("bare base64 key file: %v", err)
	}
	// dns is optional in PA mode.
	if cfg, err := Parse("test", []byte(paBase[:strings.Index(paBase, "dns:")]), nil); err != nil || cfg.DNS != nil {
		t.Errorf("PA mode without dns: %v, dns %v; want valid, no DNS", err, cfg)
	}
	if cfg := mustLoad(t, "testdata/valid.yaml"); cfg.Site.Mode != ModePI || cfg.DNS != nil {
		t.Errorf("valid.yaml mode %q dns %v; want pi without dns", cfg.Site.Mode, cfg.DNS)
	}
}

// TestPAInvalid breaks paBase (or base, for PI mode) one key at a time;
// each case names the path and the words of the fix.
func TestPAInvalid(t *testing.T) {
	tests := []struct {
		name, from, to, path, msg string
		pi                        bool // edit base (PI mode) instead
	}{
		// PA keys in PI mode, PI keys in PA mode.
		{name: "mode", from: "mode: pa", to: "mode: nat", path: "site.mode", msg: "use pi"},
		{name: "pa prefix in pi", pi: true, from: "interface: eth-b", to: "interface: eth-b\n    pa_prefix: 2001:db8:2001::/48", path: "uplinks[1].pa_prefix", msg: "set site.mode: pa"},
		{name: "nat44 in pi", pi: true, from: "interface: eth-b", to: "interface: eth-b\n    nat44: interface", path: "uplinks[1].nat44", msg: "set site.mode: pa"},
		{name: "internal prefix in pi", pi: true, from: "site: {prefixes", to: "site: {internal_prefix: 'fd00::/48', prefixes", path: "site.internal_prefix", msg: "set site.mode: pa"},
		{name: "dns in pi", pi: true, from: "profile: lab", to: "profile: lab\ndns: {zone: x}", path: "dns", msg: "set site.mode: pa"},
		{name: "nptv6 in pi", pi: true, from: "profile: lab", to: "profile: lab\nnptv6: {backend: ebpf}", path: "nptv6", msg: "set site.mode: pa"},
		{name: "site prefixes in pa", from: "mode: pa", to: "mode: pa\n  prefixes: [2001:db8:face::/48]", path: "site.prefixes", msg: "announces nothing"},
		{name: "communities in pa", from: "peer_asn: 64502,", to: "peer_asn: 64502, communities: ['64502:1'],", path: "uplinks[1].bgp.communities", msg: "announces nothing"},
		{name: "prepend in pa", from: "peer_asn: 64502,", to: "peer_asn: 64502, prepend: 2,", path: "uplinks[1].bgp.prepend", msg: "announces nothing"},
		{name: "degraded in pa", from: "nat44: interface", to: "nat44: interface\n    degraded: {prepend: 2}", path: "uplinks[1].degraded", msg: "announces nothing"},
		{name: "down prepend in pa", from: "nat44: interface", to: "nat44: interface\n    down_action: prepend", path: "uplinks[1].down_action", msg: "announces nothing"},
		// The internal prefix.
		{name: "no internal prefix", from: "  internal_prefix: fd7a:5e1d:9c00::/48\n", to: "", path: "site.internal_prefix", msg: "missing"},
		{name: "internal not ula in production", from: "profile: lab\nnode: {router_id: 198.51.100.1, asn: 64500}\nsite:\n  mode: pa\n  internal_prefix: fd7a:5e1d:9c00::/48",
			to: "profile: production\nnode: {router_id: 198.51.100.1, asn: 64500}\nsite:\n  mode: pa\n  internal_prefix: 2001:db8:9c00::/48", path: "site.internal_prefix", msg: "not a ULA"},
		{name: "internal ipv4", from: "internal_prefix: fd7a:5e1d:9c00::/48", to: "internal_prefix: 192.0.2.0/24", path: "site.internal_prefix", msg: "not IPv6"},
		{name: "internal too long", from: "internal_prefix: fd7a:5e1d:9c00::/48", to: "internal_prefix: fd7a:5e1d:9c00:1:8000::/65", path: "site.internal_prefix", msg: "RFC 6296 section 3.5"},
		{name: "internal ipv4 prefix v6", from: "internal_prefix_ipv4: 192.0.2.0/24", to: "internal_prefix_ipv4: fd00::/64", path: "site.internal_prefix_ipv4", msg: "not IPv4"},
		{name: "ipv4 without nat", from: "    nat44: 198.18.1.2\n", to: "", path: "", msg: ""},
		// PA prefixes.
		{name: "no pa prefix", from: "    pa_prefix: 2001:db8:2001::/48\n", to: "", path: "uplinks[1].pa_prefix", msg: "missing"},
		{name: "pa overlaps pa", from: "pa_prefix: 2001:db8:2001::/48", to: "pa_prefix: 2001:db8:1000::/36", path: "uplinks[1].pa_prefix", msg: "overlaps uplinks[0].pa_prefix"},
		{name: "pa overlaps internal", from: "pa_prefix: 2001:db8:2001::/48", to: "pa_prefix: fd7a:5e1d:9c00::/48", path: "uplinks[1].pa_prefix", msg: "is a ULA"},
		{name: "pa longer than internal", from: "pa_prefix: 2001:db8:2001::/48", to: "pa_prefix: 2001:db8:2001::/56", path: "uplinks[1].pa_prefix", msg: "longer than site.internal_prefix"},
		{name: "pa too long", from: "pa_prefix: 2001:db8:2001::/48", to: "pa_prefix: 2001:db8:2001::/80", path: "uplinks[1].pa_prefix", msg: "/1 to /64"},
		{name: "pa ipv4", from: "pa_prefix: 2001:db8:2001::/48", to: "pa_prefix: 198.51.100.0/24", path: "uplinks[1].pa_prefix", msg: "not IPv6"},
		{name: "pa documentation in production", from: "profile: lab\n", to: "profile: production\n", path: "uplinks[0].pa_prefix", msg: "documentation space"},
		// Uplinks without BGP.
		{name: "neither bgp nor health", from: "    health: {targets: ['icmp://2001:db8:9000:1::10']}\n", to: "", path: "uplinks[0]", msg: "neither bgp nor health"},
		{name: "no gateway", from: "    gateway: \"2001:db8:1000:1::1\"\n", to: "", path: "uplinks[0].gateway", msg: "missing"},
		{name: "nat44 bad", from: "nat44: 198.18.1.2", to: "nat44: eth0", path: "uplinks[0].nat44", msg: "neither an IPv4 address nor interface"},
		{name: "nat44 v6", from: "nat44: 198.18.1.2", to: "nat44: \"2001:db8::1\"", path: "uplinks[0].nat44", msg: "neither an IPv4 address nor interface"},
		{name: "nat44 without inside", from: "  internal_prefix_ipv4: 192.0.2.0/24\n", to: "", path: "uplinks[0].nat44", msg: "site.internal_prefix_ipv4 is not"},
		{name: "nat44 without v4 gateway", from: "    gateway_ipv4: 198.18.1.1\n", to: "", path: "uplinks[0].gateway_ipv4", msg: "missing"},
		{name: "nptv6 backend", from: "backend: kernel", to: "backend: xdp", path: "nptv6.backend", msg: "use ebpf"},
		{name: "pin path with kernel", from: "backend: kernel", to: "backend: kernel, pin_path: /sys/fs/bpf/x", path: "nptv6.pin_path", msg: "ebpf backend's"},
		{name: "pin path relative", from: "backend: kernel", to: "backend: ebpf, pin_path: bpf/x", path: "nptv6.pin_path", msg: "not an absolute path"},
		// DNS.
		{name: "dns zone", from: "zone: site.example", to: "zone: 'a..b'", path: "dns.zone", msg: "not a domain name"},
		{name: "dns server name", from: "server: 192.0.2.53", to: "server: ns.site.example", path: "dns.server", msg: "not an address"},
		{name: "dns server missing", from: "  server: 192.0.2.53\n", to: "", path: "dns.server", msg: "missing"},
		{name: "dns algorithm", from: "name: mh-update,", to: "name: mh-update, algorithm: hmac-md5,", path: "dns.tsig.algorithm", msg: "hmac-sha256"},
		{name: "dns key name", from: "name: mh-update,", to: "", path: "dns.tsig.name", msg: "missing"},
		{name: "dns no secret file", from: ", secret_file: KEYFILE", to: "", path: "dns.tsig.secret_file", msg: "missing"},
		{name: "dns secret file absent", from: "secret_file: KEYFILE", to: "secret_file: /nonexistent/key", path: "dns.tsig.secret_file", msg: "cannot read it"},
		{name: "dns ttl", from: "  hosts:", to: "  ttl: 1500ms\n  hosts:", path: "dns.ttl", msg: "whole seconds"},
		{name: "dns no hosts", from: "  hosts:\n    - {name: www, internal: \"fd7a:5e1d:9c00:1::80\"}\n", to: "", path: "dns.hosts", msg: "missing"},
		{name: "dns host outside", from: "fd7a:5e1d:9c00:1::80", to: "fd7a:5e1d:9c01:1::80", path: "dns.hosts[0].internal", msg: "outside site.internal_prefix"},
		{name: "dns host v4", from: "internal: \"fd7a:5e1d:9c00:1::80\"", to: "internal: 192.0.2.80", path: "dns.hosts[0].internal", msg: "not IPv6"},
		{name: "dns host name", from: "name: www,", to: "name: 'w w',", path: "dns.hosts[0].name", msg: "not a domain name"},
		{name: "dns dup host", from: "    - {name: www, internal: \"fd7a:5e1d:9c00:1::80\"}\n", to: "    - {name: www, internal: \"fd7a:5e1d:9c00:1::80\"}\n    - {name: WWW., internal: \"fd7a:5e1d:9c00:1::81\"}\n", path: "dns.hosts[1].name", msg: "dns.hosts[0] again"},
		{name: "dns unknown key", from: "zone: site.example", to: "zone: site.example\n  tll: 30s", path: "dns.tll", msg: `did you mean "ttl"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := paBase
			if tt.pi {
				text = base
			}
			text = withKeyFile(t, edit(t, text, tt.from, tt.to), tsigSecretB64)
			_, err := Parse("test", []byte(text), nil)
			if tt.name == "ipv4 without nat" {
				// isp-b still NATs: valid. Without any nat44 it is not.
				if err != nil {
					t.Fatalf("one uplink with nat44 is enough: %v", err)
				}
				_, err = Parse("test", []byte(edit(t, text, "    nat44: interface\n", "")), nil)
				assertProblem(t, err, "site.internal_prefix_ipv4", "no uplink has nat44")
				return
			}
			assertProblem(t, err, tt.path, tt.msg)
		})
	}
}

// TestPASecretShort: a key file whose secret is too short for TSIG.
func TestPASecretShort(t *testing.T) {
	_, err := Parse("test", []byte(paText(t, "c2hvcnQ=")), nil)
	assertProblem(t, err, "dns.tsig.secret_file", "at least 16 bytes")
	_, err = Parse("test", []byte(paText(t, "not base64!")), nil)
	assertProblem(t, err, "dns.tsig.secret_file", "no base64 secret")
}

// TestPAProductionRefusesUnroutable: in production a PA prefix no ISP
// routes (outside 2000::/3, inside a default bogon, or covering one) is
// refused with what it is, as docs/configuration.md says; the lab profile
// takes it.
func TestPAProductionRefusesUnroutable(t *testing.T) {
	for _, c := range []struct{ prefix, why string }{
		{"fe80::/48", "outside IPv6 global unicast"},
		{"2002:c000:204::/48", "6to4"},
		{"2000::/3", "covers 2001:2::/48"},
	} {
		lab := withKeyFile(t, edit(t, paBase, "pa_prefix: 2001:db8:2001::/48", "pa_prefix: "+c.prefix), tsigSecretB64)
		if c.prefix != "2000::/3" { // that one overlaps isp-a's in any profile
			if _, err := Parse("test", []byte(lab), nil); err != nil {
				t.Errorf("lab profile, pa_prefix %s: %v", c.prefix, err)
			}
		}
		_, err := Parse("test", []byte(edit(t, lab, "profile: lab\n", "profile: production\n")), nil)
		assertProblem(t, err, "uplinks[1].pa_prefix", c.why)
	}
}

package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func mustLoad(t *testing.T, path string) *Config {
	t.Helper()
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestLoadValid(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid.yaml")
	med := uint32(10)
	want := Uplink{
		Name: "isp-a", Interface: "eth-a",
		BGP: UplinkBGP{
			PeerASN:          64501,
			Neighbor:         netip.MustParseAddr("2001:db8:1000:1::1"),
			LocalAddress:     netip.MustParseAddr("2001:db8:1000:1::2"),
			NeighborIPv4:     netip.MustParseAddr("198.18.1.1"),
			LocalAddressIPv4: netip.MustParseAddr("198.18.1.2"),
			Password:         NewSecret("s3cret-md5"),
			HoldTime:         DefaultHoldTime,
			Keepalive:        DefaultKeepalive,
			ConnectRetry:     DefaultConnectRetry,
			Import:           ImportDefault,
			MaxPrefixes:      DefaultMaxPrefixesSmall,
			MaxPrefixRestart: DefaultMaxPrefixRestart,
			Communities:      []routing.Community{64501<<16 | 100},
			LargeCommunities: []routing.LargeCommunity{{Global: 64500, Local1: 1, Local2: 1}},
			MED:              &med,
		},
		Gateway:     netip.MustParseAddr("2001:db8:1000:1::1"),
		GatewayIPv4: netip.MustParseAddr("198.18.1.1"),
		Weight:      1,
		Degraded:    Degraded{Prepend: DefaultDegradedPrepend},
		DownAction:  DownWithdraw,
	}
	if d := cmp.Diff(want, cfg.Uplinks[0], cmp.AllowUnexported(Secret{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("uplinks[0] (-want +got):\n%s", d)
	}
	b := cfg.Uplinks[1].BGP
	if b.HoldTime != 30*time.Second || b.Keepalive != 10*time.Second || b.Prepend != 2 || b.Password.IsSet() {
		t.Errorf("uplinks[1].bgp = %+v; want hold 30s, keepalive derived 10s, prepend 2, no password", b)
	}
	if cfg.BGP.ListenPort != -1 || !cfg.BGP.GracefulRestart || cfg.Profile != ProfileLab {
		t.Errorf("globals = %+v profile %s; want listen -1, graceful restart on, lab", cfg.BGP, cfg.Profile)
	}
	for _, p := range cfg.Filters.BogonPrefixes {
		if IsDocumentation(p) {
			t.Errorf("lab profile kept documentation bogon %s", p)
		}
	}
	if len(cfg.Filters.BogonPrefixes) != len(defaultBogonPrefixes)-5 {
		t.Errorf("lab profile removed %d bogon prefixes; want exactly the 5 documentation ones", len(defaultBogonPrefixes)-len(cfg.Filters.BogonPrefixes))
	}
	isBogon := func(asn uint32) bool {
		for _, r := range cfg.Filters.BogonASNs {
			if r.Contains(asn) {
				return true
			}
		}
		return false
	}
	for _, asn := range []uint32{64496, 64500, 64511, 65536, 65551} {
		if isBogon(asn) {
			t.Errorf("lab profile still treats documentation ASN %d as bogon: %v", asn, cfg.Filters.BogonASNs)
		}
	}
	for _, asn := range []uint32{0, 23456, 64495 + 17, 65535, 65552, 131071, 4200000000} {
		if !isBogon(asn) {
			t.Errorf("lab profile relaxed non-documentation ASN %d: %v", asn, cfg.Filters.BogonASNs)
		}
	}
}

// TestInstall: bgp.install with an import-full uplink takes the table and
// the default protocol.
func TestInstall(t *testing.T) {
	text := edit(t, base, "peer_asn: 64502,", "peer_asn: 64502, import: full,")
	text = edit(t, text, "profile: lab", "profile: lab\nbgp: {install: {table: 200}}")
	cfg, err := Parse("test", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Install{Table: 200, Protocol: DefaultInstallProtocol}); cfg.BGP.Install != want {
		t.Errorf("bgp.install = %+v; want %+v", cfg.BGP.Install, want)
	}
}

func TestProductionKeepsEveryBogon(t *testing.T) {
	text := edit(t, validYAML(t), "profile: lab", "profile: production")
	_, err := Parse("t", []byte(text), nil)
	// Documentation site prefixes are refused outside the lab profile.
	assertProblem(t, err, "site.prefixes[0]", "documentation space")
	// Production needs a prefix ISPs route: outside every documentation
	// and bogon range, and no one's. 3c00::/6 lies in 3000::/4, global
	// unicast that IANA has allocated to no registry; IPv4 has no such
	// space, so the site here is IPv6 only. Only parsed: no route or
	// packet uses it.
	cfg, err := Parse("t", []byte(edit(t, edit(t, text, "2001:db8:face::/48", "3c00:face::/48"), "    - 198.51.100.0/24\n", "")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Filters.BogonPrefixes) != len(defaultBogonPrefixes) || len(cfg.Filters.BogonASNs) != len(defaultBogonASNs) {
		t.Errorf("production filters = %v; want every default", cfg.Filters)
	}
}

// TestProductionRefusesUnroutableSitePrefixes: in production a site
// prefix no ISP would carry is refused with what it is, since announcing
// it would leave the site unreachable without a word; so is an aggregate
// that covers one (a default route among them).
func TestProductionRefusesUnroutableSitePrefixes(t *testing.T) {
	text := edit(t, validYAML(t), "profile: lab", "profile: production")
	for _, c := range []struct{ prefix, why string }{
		{"fd00:1234::/48", "outside IPv6 global unicast"},
		{"10.20.0.0/16", "10.0.0.0/8 (private, RFC 1918)"},
		{"198.19.4.0/24", "198.18.0.0/15 (benchmarking, RFC 2544)"},
		{"100.64.1.0/24", "shared CGN space"},
		{"2002:c000:204::/48", "6to4"},
		// Aggregates covering a bogon: a default route or a /8 is not a
		// site's block, and announcing it would claim others' space.
		{"0.0.0.0/0", "covers 0.0.0.0/8"},
		{"192.0.0.0/16", "covers 192.0.0.0/24 (IETF protocol assignments"},
		{"2000::/3", "covers 2001:2::/48"},
	} {
		_, err := Parse("t", []byte(edit(t, text, "2001:db8:face::/48", c.prefix)), nil)
		assertProblem(t, err, "site.prefixes[0]", c.why)
	}
	// The lab profile takes them: a lab routes what it likes.
	if _, err := Parse("t", []byte(edit(t, validYAML(t), "2001:db8:face::/48", "fd00:1234::/48")), nil); err != nil {
		t.Errorf("lab profile, ULA site prefix: %v", err)
	}
}

func assertProblem(t *testing.T, err error, path, substr string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v; want *config.Error with %s: ...%s...", err, path, substr)
	}
	for _, p := range ce.Problems {
		if p.Path == path && strings.Contains(p.Message, substr) {
			return
		}
	}
	t.Fatalf("no problem %s: ...%s... in:\n%v", path, substr, err)
}

// base is a minimal valid configuration the table below breaks one key at a
// time.
const base = `
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: [2001:db8:face::/48]}
uplinks:
  - name: isp-a
    interface: eth-a
    bgp: {peer_asn: 64501, neighbor: "2001:db8:1000:1::1"}
  - name: isp-b
    interface: eth-b
    bgp: {peer_asn: 64502, neighbor: "2001:db8:2000:1::1"}
`

func TestInvalid(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(pwFile, nil, 0o600)
	tests := []struct {
		name, from, to, path, msg string
	}{
		{"bad neighbor", `"2001:db8:2000:1::1"`, `"2001:db8::zz"`, "uplinks[1].bgp.neighbor", `"2001:db8::zz" is not an IP address`},
		{"missing neighbor", `, neighbor: "2001:db8:2000:1::1"`, ``, "uplinks[1].bgp.neighbor", "missing"},
		{"router id v6", "router_id: 198.51.100.1", "router_id: 2001:db8::1", "node.router_id", "not IPv4"},
		{"asn zero", "asn: 64500", "asn: 0", "node.asn", "missing"},
		{"asn too big", "asn: 64500", "asn: 4294967296", "node.asn", "out of range"},
		{"as_trans", "asn: 64500", "asn: 23456", "node.asn", "AS_TRANS"},
		{"host bits", "2001:db8:face::/48", "2001:db8:face::1/48", "site.prefixes[0]", "did you mean 2001:db8:face::/48"},
		{"too long v6", "2001:db8:face::/48", "2001:db8:face:1::/64", "site.prefixes[0]", "longer than /48"},
		{"not a prefix", "2001:db8:face::/48", "2001:db8:face::", "site.prefixes[0]", "not a prefix"},
		{"overlap", "[2001:db8:face::/48]", "[2001:db8:face::/48, 2001:db8:fa00::/40]", "site.prefixes[1]", "overlaps site.prefixes[0]"},
		{"ipv4 without session", "[2001:db8:face::/48]", "[2001:db8:face::/48, 198.51.100.0/24]", "site.prefixes[1]", "no uplink has an IPv4 session"},
		{"dup name", "name: isp-b", "name: isp-a", "uplinks[1].name", "already the name of uplinks[0]"},
		{"bad name", "name: isp-b", "name: ISP B", "uplinks[1].name", "lowercase"},
		{"no interface", "interface: eth-b", "interface: ''", "uplinks[1].interface", "missing"},
		{"long interface", "interface: eth-b", "interface: eth-b-far-too-long", "uplinks[1].interface", "not a Linux interface name"},
		{"ibgp", "peer_asn: 64502", "peer_asn: 64500", "uplinks[1].bgp.peer_asn", "eBGP"},
		{"import", "peer_asn: 64502,", "peer_asn: 64502, import: some,", "uplinks[1].bgp.import", "use none, default or full"},
		{"hold time", "peer_asn: 64502,", "peer_asn: 64502, hold_time: 2s,", "uplinks[1].bgp.hold_time", "3s minimum"},
		{"hold unit", "peer_asn: 64502,", "peer_asn: 64502, hold_time: 90,", "uplinks[1].bgp.hold_time", "no unit; write 90s"},
		{"keepalive", "peer_asn: 64502,", "peer_asn: 64502, hold_time: 9s, keepalive: 9s,", "uplinks[1].bgp.keepalive", "not below hold_time"},
		{"community", "peer_asn: 64502,", "peer_asn: 64502, communities: ['64502:70000'],", "uplinks[1].bgp.communities[0]", "not a community"},
		{"large community", "peer_asn: 64502,", "peer_asn: 64502, large_communities: ['1:2'],", "uplinks[1].bgp.large_communities[0]", "not a large community"},
		{"reserved large community", "peer_asn: 64502,", "peer_asn: 64502, large_communities: ['64500:1:1', '64500:3:1'],", "uplinks[1].bgp.large_communities[1]", "64500:3:1 is reserved"},
		{"prepend", "peer_asn: 64502,", "peer_asn: 64502, prepend: 11,", "uplinks[1].bgp.prepend", "out of range 0-10"},
		{"max prefixes", "peer_asn: 64502,", "peer_asn: 64502, max_prefixes: 0,", "uplinks[1].bgp.max_prefixes", "at least 1"},
		{"both passwords", "peer_asn: 64502,", "peer_asn: 64502, password: a, password_file: /x,", "uplinks[1].bgp.password", "keep one"},
		{"missing password file", "peer_asn: 64502,", "peer_asn: 64502, password_file: /nonexistent/pw,", "uplinks[1].bgp.password_file", "cannot read it"},
		{"device password file", "peer_asn: 64502,", "peer_asn: 64502, password_file: /dev/zero,", "uplinks[1].bgp.password_file", "not a regular file"},
		{"empty password file", "peer_asn: 64502,", "peer_asn: 64502, password_file: " + pwFile + ",", "uplinks[1].bgp.password_file", "is empty"},
		{"dup neighbor", `"2001:db8:2000:1::1"`, `"2001:db8:1000:1::1"`, "uplinks[1].bgp.neighbor", "already a neighbor of uplinks[0]"},
		{"local family", "peer_asn: 64502,", "peer_asn: 64502, local_address: 198.18.2.2,", "uplinks[1].bgp.local_address", "not the same address family"},
		{"unknown key", "peer_asn: 64502,", "peer_asn: 64502, nieghbor: x,", "uplinks[1].bgp.nieghbor", `did you mean "neighbor"`},
		{"unknown top key", "profile: lab", "profile: lab\nnodes: {x: 1}", "nodes", `did you mean "node"`},
		{"profile", "profile: lab", "profile: test", "profile", "use production or lab"},
		{"no uplinks", "uplinks:", "other:", "uplinks", "at least one uplink"},
		{"listen port", "profile: lab", "profile: lab\nbgp: {listen_port: 0}", "bgp.listen_port", "not a port"},
		{"install without full", "profile: lab", "profile: lab\nbgp: {install: {table: 200}}", "bgp.install.table", "no uplink has bgp.import: full"},
		{"install main", "profile: lab", "profile: lab\nbgp: {install: {table: 254}}", "bgp.install.table", "main table"},
		{"install protocol", "profile: lab", "profile: lab\nbgp: {install: {table: 200, protocol: 78}}", "bgp.install.protocol", "egress.protocol"},
		{"install protocol alone", "profile: lab", "profile: lab\nbgp: {install: {protocol: 90}}", "bgp.install.protocol", "bgp.install.table is not"},
		{"bogon asn", "profile: lab", "profile: lab\nfilters: {bogon_asns: ['9-1']}", "filters.bogon_asns[0]", "not an ASN or range"},
		{"wrong type", "asn: 64500", "asn: [1]", "", "wrong type"},
		{"log level", "profile: lab", "profile: lab\nlog: {level: loud}", "log.level", "use debug, info"},
		{"egress mode", "profile: lab", "profile: lab\negress: {mode: random}", "egress.mode", "use failover or ecmp"},
		{"egress table", "profile: lab", "profile: lab\negress: {table: 255}", "egress.table", "reserved"},
		{"hold max", "profile: lab", "profile: lab\ncontroller: {hold_down: 10s, hold_down_max: 1s}", "controller.hold_down_max", "below hold_down"},
		{"ibgp lp", "profile: lab", "profile: lab\nibgp: {local_pref_up: 100, local_pref_degraded: 100}", "ibgp.local_pref_degraded", "not below local_pref_up"},
		{"ibgp neighbor", "profile: lab", "profile: lab\nibgp: {peers: [{neighbor: x}]}", "ibgp.peers[0].neighbor", "not an IP address"},
		{"gateway family", "interface: eth-b", "interface: eth-b\n    gateway: 198.18.2.1", "uplinks[1].gateway", "not IPv6"},
		{"weight", "interface: eth-b", "interface: eth-b\n    weight: 0", "uplinks[1].weight", "out of range"},
		{"down action", "interface: eth-b", "interface: eth-b\n    down_action: shout", "uplinks[1].down_action", "use withdraw or prepend"},
		{"degraded prepend", "interface: eth-b", "interface: eth-b\n    degraded: {prepend: 12}", "uplinks[1].degraded.prepend", "out of range"},
		{"health no targets", "interface: eth-b", "interface: eth-b\n    health: {interval: 1s}", "uplinks[1].health.targets", "none configured"},
		{"health bad target", "interface: eth-b", "interface: eth-b\n    health: {targets: ['ftp://x']}", "uplinks[1].health.targets[0]", ""},
		{"health interval", "interface: eth-b", "interface: eth-b\n    health: {targets: ['icmp://2001:db8:9000:1::10'], interval: 20ms}", "uplinks[1].health.interval", "50ms"},
		{"health target key", "interface: eth-b", "interface: eth-b\n    health: {targets: [{kind: icmp, adress: '2001:db8::1'}]}", "uplinks[1].health.targets[0].adress", `did you mean "address"`},
		{"health unknown key", "interface: eth-b", "interface: eth-b\n    health: {targets: ['icmp://2001:db8:9000:1::10'], intervall: 1s}", "uplinks[1].health.intervall", `did you mean "interval"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := edit(t, base, tt.from, tt.to)
			_, err := Parse("test", []byte(text), nil)
			assertProblem(t, err, tt.path, tt.msg)
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	text := edit(t, edit(t, edit(t, base, "asn: 64500", "asn: 0"), `"2001:db8:2000:1::1"`, `"zz"`), "name: isp-b", "name: isp-a")
	_, err := Parse("test", []byte(text), nil)
	for _, p := range []string{"node.asn", "uplinks[1].bgp.neighbor", "uplinks[1].name"} {
		assertProblem(t, err, p, "")
	}
}

func TestInvalidYAML(t *testing.T) {
	_, err := Parse("test", []byte("node: [\n"), nil)
	assertProblem(t, err, "", "not valid YAML")
}

func TestSecretsNeverPrint(t *testing.T) {
	cfg := mustLoad(t, "testdata/valid.yaml")
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(js), fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg.Uplinks), fmt.Sprintf("%#v", cfg.Uplinks[0])} {
		if strings.Contains(out, "s3cret-md5") {
			t.Fatalf("password printed: %s", out)
		}
	}
	if cfg.Uplinks[0].BGP.Password.Reveal() != "s3cret-md5" {
		t.Fatal("Reveal lost the password")
	}
	// Nor in an error about the password.
	text := edit(t, base, "peer_asn: 64502,", "peer_asn: 64502, password: "+strings.Repeat("k", 81)+",")
	_, err = Parse("t", []byte(text), nil)
	assertProblem(t, err, "uplinks[1].bgp.password", "80 bytes")
	if strings.Contains(err.Error(), strings.Repeat("k", 81)) {
		t.Fatal("password printed in an error")
	}
}

func TestPasswordFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(f, []byte("from-file\n"), 0o600)
	text := edit(t, base, "peer_asn: 64502,", "peer_asn: 64502, password_file: "+f+",")
	cfg, err := Parse("t", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Uplinks[1].BGP.Password.Reveal(); got != "from-file" {
		t.Fatalf("password = %q; want from-file (trailing newline trimmed)", got)
	}
}

func TestGlobalPrecedence(t *testing.T) {
	text := base + "log: {level: warn, format: json}\n"
	cfg, err := Parse("t", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "warn" {
		t.Fatalf("file level = %s; want warn", cfg.Log.Level)
	}
	t.Setenv("MULTIHOMED_LOG_LEVEL", "error")
	cfg, _ = Parse("t", []byte(text), nil)
	if cfg.Log.Level != "error" || cfg.Log.Format != "json" {
		t.Fatalf("env level = %s format %s; want error json", cfg.Log.Level, cfg.Log.Format)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse([]string{"--log-level=debug"}); err != nil {
		t.Fatal(err)
	}
	cfg, _ = Parse("t", []byte(text), fs)
	if cfg.Log.Level != "debug" {
		t.Fatalf("flag level = %s; want debug", cfg.Log.Level)
	}
	cfg, _ = Parse("t", []byte(base), nil)
	if cfg.Log.Level != "error" || cfg.Log.Format != "text" {
		t.Fatalf("defaults with env: %+v; want error (env) and text (default)", cfg.Log)
	}
}

// parseAllocBudget is what Parse may allocate for n bytes of input: a fixed
// 4 MiB for viper and the YAML decoder, plus 256 bytes per input byte. The
// largest legal configuration needs about 60 per byte
// (BenchmarkValidateLargest); the quadratic overlap check once needed
// ~19,000 per byte (790 MiB for 42 KB).
func parseAllocBudget(n int) uint64 { return 4<<20 + 256*uint64(n) }

// FuzzParse checks that no input is accepted incomplete, rejected without a
// problem, or costs more memory than parseAllocBudget.
func FuzzParse(f *testing.F) {
	data, _ := os.ReadFile("testdata/valid.yaml")
	f.Add(data)
	f.Add([]byte(base))
	f.Add([]byte("uplinks: [{bgp: {communities: ['1:2:3']}}]"))
	f.Add([]byte(largestConfig()))
	// PA mode, without the dns section (its key file is not there).
	f.Add([]byte(paBase[:strings.Index(paBase, "dns:")]))
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cfg, err := Parse("fuzz", data, nil)
		runtime.ReadMemStats(&after)
		if got, budget := after.TotalAlloc-before.TotalAlloc, parseAllocBudget(len(data)); got > budget {
			t.Fatalf("Parse of %d bytes allocated %d bytes; the budget is %d", len(data), got, budget)
		}
		if err == nil {
			if cfg == nil || len(cfg.Uplinks) == 0 || (cfg.Site.Mode == ModePA) == (len(cfg.Site.Prefixes) > 0) || cfg.Site.Mode == ModePA && !cfg.Site.InternalPrefix.IsValid() {
				t.Fatalf("accepted an incomplete config: %+v", cfg)
			}
			return
		}
		var ce *Error
		if errors.As(err, &ce) && len(ce.Problems) == 0 {
			t.Fatal("rejected with no problem listed")
		}
	})
}

func TestHealthBlock(t *testing.T) {
	text := edit(t, base, "interface: eth-b", `interface: eth-b
    health:
      interval: 200ms
      targets:
        - icmp://2001:db8:9000:1::10
        - {kind: tcp, address: "2001:db8:9000:1::10", port: 443, interval: 100ms}`)
	cfg, err := Parse("t", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Uplinks[1].Health
	if h == nil || len(h.Targets) != 2 {
		t.Fatalf("health = %+v; want two targets", h)
	}
	if h.Targets[0].Interval != 200*time.Millisecond || h.Targets[1].Interval != 100*time.Millisecond || h.Targets[1].Port != 443 {
		t.Errorf("targets = %+v; want block interval inherited and per-target override", h.Targets)
	}
	if h.Mark == 0 || h.Table == 0 || cfg.Uplinks[0].Health != nil {
		t.Errorf("defaults not applied or health invented: %+v / %+v", h, cfg.Uplinks[0].Health)
	}
}

func TestHealthAdaptiveKeys(t *testing.T) {
	text := edit(t, base, "interface: eth-b", `interface: eth-b
    health:
      timeout: 300ms
      timeout_floor: 30ms
      burst_interval: 15ms
      burst_probes: 4
      no_bursts: true
      targets:
        - icmp://2001:db8:9000:1::10
        - {kind: icmp, address: "2001:db8:9000:1::11", timeout_floor: 80ms}`)
	cfg, err := Parse("t", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Uplinks[1].Health
	if h.TimeoutFloor != 30*time.Millisecond || h.BurstInterval != 15*time.Millisecond || h.BurstProbes != 4 || !h.NoBursts {
		t.Errorf("block: floor %v, bursts %d x %v, off %v; want 30ms, 4 x 15ms, true", h.TimeoutFloor, h.BurstProbes, h.BurstInterval, h.NoBursts)
	}
	if h.Targets[0].TimeoutFloor != 30*time.Millisecond || h.Targets[1].TimeoutFloor != 80*time.Millisecond {
		t.Errorf("target floors %v, %v; want 30ms inherited and 80ms", h.Targets[0].TimeoutFloor, h.Targets[1].TimeoutFloor)
	}
	bad := edit(t, base, "interface: eth-b", "interface: eth-b\n    health: {targets: ['icmp://2001:db8:9000:1::10'], timeout: 100ms, timeout_floor: 200ms}")
	_, err = Parse("t", []byte(bad), nil)
	assertProblem(t, err, "uplinks[1].health.timeout_floor", "outside 10ms..timeout (100ms)")
}

func TestHealthMarksUnique(t *testing.T) {
	text := edit(t, base, "interface: eth-a", "interface: eth-a\n    health: {targets: ['icmp://2001:db8:9000:1::10'], mark: 7}")
	text = edit(t, text, "interface: eth-b", "interface: eth-b\n    health: {targets: ['icmp://2001:db8:9000:1::10'], mark: 7}")
	_, err := Parse("t", []byte(text), nil)
	assertProblem(t, err, "uplinks[1].health.mark", "already used by uplinks[0]")
}

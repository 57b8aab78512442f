package privilege

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/config"
)

const baseConfig = `profile: lab
node:
  router_id: 198.51.100.1
  asn: 64500
site:
  prefixes: [2001:db8:face::/48]
uplinks:
  - name: isp-a
    interface: eth-a
    bgp: {peer_asn: 64501, neighbor: "2001:db8:1000:1::1", import: default}
    health:
      targets: ["icmp://2001:db8:9000:1::10", "tcp://[2001:db8:9000:2::10]:443"]
  - name: isp-b
    interface: eth-b
    bgp: {peer_asn: 64502, neighbor: "2001:db8:2000:1::1", import: default}
    health:
      targets: ["tcp://[2001:db8:9000:2::10]:443"]
  - name: isp-c
    interface: eth-c
    bgp: {peer_asn: 64503, neighbor: "2001:db8:3000:1::1", import: default}
egress:
  table: 100
`

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestUsesOf(t *testing.T) {
	cfg := parse(t, baseConfig+"bgp:\n  listen_port: 179\nmetrics:\n  address: 127.0.0.1:9479\n")
	want := Uses{
		EgressTable: 100,
		Probes: []ProbeUse{
			{Uplink: "isp-a", ICMP: true, Mark: true},
			{Uplink: "isp-b", ICMP: false, Mark: true},
		},
		Listeners: []Listener{
			{Key: "bgp.listen_port", Port: 179},
			{Key: "metrics.address", Port: 9479},
		},
	}
	if diff := cmp.Diff(want, UsesOf(cfg)); diff != "" {
		t.Errorf("UsesOf (-want +got):\n%s", diff)
	}
}

func TestUsesOfDialOnlyNoMetrics(t *testing.T) {
	cfg := parse(t, baseConfig+"metrics:\n  address: \"\"\n")
	u := UsesOf(cfg)
	if len(u.Listeners) != 0 {
		t.Errorf("listen_port -1 and no metrics: want no listeners, got %+v", u.Listeners)
	}
}

func TestNeeds(t *testing.T) {
	tests := []struct {
		name      string
		uses      Uses
		portStart int
		want      []Need
	}{
		{
			name:      "routes only",
			uses:      Uses{EgressTable: 254},
			portStart: 1024,
			want:      []Need{{Cap: NetAdmin, Why: []string{"egress default routes in table 254"}}},
		},
		{
			name: "ICMP probes on two uplinks, TCP on a third",
			uses: Uses{EgressTable: 254, Probes: []ProbeUse{
				{Uplink: "isp-a", ICMP: true, Mark: true},
				{Uplink: "isp-b", ICMP: true, Mark: true},
				{Uplink: "isp-c", Mark: true},
			}},
			portStart: 1024,
			want: []Need{
				{Cap: NetAdmin, Why: []string{
					"egress default routes in table 254",
					"probe routing tables and rules for uplinks isp-a, isp-b, isp-c",
					"SO_MARK on probe sockets of uplinks isp-a, isp-b, isp-c",
				}},
				{Cap: NetRaw, Why: []string{"ICMP probes on uplinks isp-a, isp-b"}},
			},
		},
		{
			name:      "TCP probes only need no CAP_NET_RAW",
			uses:      Uses{EgressTable: 254, Probes: []ProbeUse{{Uplink: "isp-b"}}},
			portStart: 1024,
			want: []Need{{Cap: NetAdmin, Why: []string{
				"egress default routes in table 254",
				"probe routing tables and rules for uplink isp-b",
			}}},
		},
		{
			name: "low ports need CAP_NET_BIND_SERVICE, high and ephemeral ones do not",
			uses: Uses{EgressTable: 254, Listeners: []Listener{
				{Key: "bgp.listen_port", Port: 179},
				{Key: "api.tcp.address", Port: 50051},
				{Key: "metrics.address", Port: 443},
				{Key: "other", Port: 0},
			}},
			portStart: 1024,
			want: []Need{
				{Cap: NetBindService, Why: []string{"bgp.listen_port port 179 is below 1024", "metrics.address port 443 is below 1024"}},
				{Cap: NetAdmin, Why: []string{"egress default routes in table 254"}},
			},
		},
		{
			name:      "ip_unprivileged_port_start 0 (Docker's default) frees port 179",
			uses:      Uses{EgressTable: 254, Listeners: []Listener{{Key: "bgp.listen_port", Port: 179}}},
			portStart: 0,
			want:      []Need{{Cap: NetAdmin, Why: []string{"egress default routes in table 254"}}},
		},
		{
			name:      "a port equal to the start needs nothing",
			uses:      Uses{EgressTable: 254, Listeners: []Listener{{Key: "bgp.listen_port", Port: 179}}},
			portStart: 179,
			want:      []Need{{Cap: NetAdmin, Why: []string{"egress default routes in table 254"}}},
		},
		{
			name:      "eBPF NPTv6 backend",
			uses:      Uses{EgressTable: 254, EBPFNPTv6: true},
			portStart: 1024,
			want: []Need{
				{Cap: NetAdmin, Why: []string{"egress default routes in table 254", "attaching the eBPF NPTv6 programs"}},
				{Cap: Perfmon, Why: []string{"the verifier's pointer checks on the eBPF NPTv6 programs"}},
				{Cap: BPF, Why: []string{"loading the eBPF NPTv6 programs and maps"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Needs(tt.uses, tt.portStart)); diff != "" {
				t.Errorf("Needs (-want +got):\n%s", diff)
			}
		})
	}
}

// paConfig is a PA-mode configuration with nptv6 as given ("" for none).
func paConfig(nptv6 string) string {
	return `profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site:
  mode: pa
  internal_prefix: fd7a:5e1d:9c00::/48
uplinks:
  - name: isp-a
    interface: eth-a
    gateway: "2001:db8:1000:1::1"
    pa_prefix: 2001:db8:1001::/48
    health: {targets: ['tcp://[2001:db8:9000:2::10]:443']}
` + nptv6
}

// TestUsesOfEBPFNPTv6: the eBPF backend, PA mode's default, is what the
// configuration selects it by, and nothing else asks for CAP_BPF.
func TestUsesOfEBPFNPTv6(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       bool
	}{
		{"PI mode", baseConfig, false},
		{"PA mode, backend by default", paConfig(""), true},
		{"PA mode, backend ebpf", paConfig("nptv6: {backend: ebpf}\n"), true},
		{"PA mode, backend kernel", paConfig("nptv6: {backend: kernel}\n"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := UsesOf(parse(t, tt.text)).EBPFNPTv6; got != tt.want {
				t.Errorf("EBPFNPTv6 = %v, want %v", got, tt.want)
			}
		})
	}
}

package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIBGPRoles: a peer is core unless it says edge; an edge peer needs an
// interface, the site's ASN if it names one, and the edges need one IPv6
// session between them.
func TestIBGPRoles(t *testing.T) {
	for _, tc := range []struct{ name, peers, path, msg string }{
		{"unknown role", "{neighbor: '2001:db8:3000::1', role: border}", "ibgp.peers[0].role", `"border" is not a role; use core`},
		{"edge without interface", "{neighbor: '2001:db8:3000::1', role: edge}", "ibgp.peers[0].interface", "missing; an edge peer needs the network device"},
		{"edge bad interface", "{neighbor: '2001:db8:3000::1', role: edge, interface: 'a/b'}", "ibgp.peers[0].interface", `"a/b" is not a Linux interface name`},
		{"core with interface", "{neighbor: '2001:db8:3000::1', interface: eth2}", "ibgp.peers[0].interface", "only a peer with role edge takes an interface"},
		{"edge in another AS", "{neighbor: '2001:db8:3000::1', role: edge, interface: eth2, asn: 64501}", "ibgp.peers[0].asn", "64501 is not node.asn 64500"},
		{"edge duplicate", "{neighbor: '2001:db8:3000::1', role: edge, interface: eth2}, {neighbor: '2001:db8:3000::1', role: edge, interface: eth2}", "ibgp.peers[1].neighbor", "already ibgp.peers[0]"},
		{"edges only over IPv4", "{neighbor: '198.51.100.7', role: edge, interface: eth2}", "ibgp.peers", "no peer with role edge has an IPv6 neighbor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t", []byte(edit(t, base, "profile: lab", "profile: lab\nbgp: {listen_port: 179}\nibgp: {peers: ["+tc.peers+"]}")), nil)
			assertProblem(t, err, tc.path, tc.msg)
		})
	}
	t.Run("edges need a listening port", func(t *testing.T) {
		_, err := Parse("t", []byte(edit(t, base, "profile: lab", "profile: lab\nibgp: {peers: [{neighbor: '2001:db8:3000::1', role: edge, interface: eth2}]}")), nil)
		assertProblem(t, err, "bgp.listen_port", "-1 (only dial out) with ibgp peers of role edge; set 179")
	})
	t.Run("accepted", func(t *testing.T) {
		cfg, err := Parse("t", []byte(edit(t, base, "profile: lab", "profile: lab\nbgp: {listen_port: 179}\nibgp: {peers: [{neighbor: '2001:db8:3000::1'}, {neighbor: '2001:db8:3000::2', role: edge, interface: eth2, asn: 64500}, {neighbor: '198.51.100.7', role: edge, interface: eth2}]}")), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range cfg.IBGP.Peers {
			got = append(got, string(p.Role)+" "+p.Interface)
		}
		if d := cmp.Diff([]string{"core ", "edge eth2", "edge eth2"}, got); d != "" {
			t.Errorf("roles (-want +got):\n%s", d)
		}
		if n := len(cfg.IBGP.EdgePeers()); n != 2 {
			t.Errorf("EdgePeers() has %d peers, want 2", n)
		}
	})
}

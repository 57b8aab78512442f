package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestIBGPAdvertise: ibgp.advertise defaults to default; full needs an
// uplink with import: full, a core peer to send to and local_pref_degraded
// of 3 or more, and a word it does not know is refused with the choices.
func TestIBGPAdvertise(t *testing.T) {
	full := strings.Replace(base, `neighbor: "2001:db8:1000:1::1"`, `neighbor: "2001:db8:1000:1::1", import: full`, 1)
	const core = "{neighbor: '2001:db8:3000::1'}"
	const edge = "{neighbor: '2001:db8:3000::2', role: edge, interface: eth2}"
	withIBGP := func(text, ibgp string) string {
		return edit(t, text, "profile: lab", "profile: lab\nbgp: {listen_port: 179}\nibgp: "+ibgp)
	}
	for _, tc := range []struct{ name, text, msg string }{
		{"unknown word", withIBGP(full, "{advertise: all, peers: ["+core+"]}"), `"all" is not a choice; use default`},
		{"no full uplink", withIBGP(base, "{advertise: full, peers: ["+core+"]}"), "no uplink has bgp.import: full"},
		{"edge peers only", withIBGP(full, "{advertise: full, peers: ["+edge+"]}"), "no peer with role core"},
		{"no peers", withIBGP(full, "{advertise: full}"), "no peer with role core"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t", []byte(tc.text), nil)
			assertProblem(t, err, "ibgp.advertise", tc.msg)
		})
	}
	// With full, local_pref_degraded stays above the edge's own 1 and 2.
	for _, lp := range []int{1, 2} {
		text := withIBGP(full, fmt.Sprintf("{advertise: full, local_pref_degraded: %d, peers: [%s]}", lp, core))
		_, err := Parse("t", []byte(text), nil)
		assertProblem(t, err, "ibgp.local_pref_degraded", "set 3 or more")
	}
	for _, text := range []string{
		withIBGP(full, "{advertise: full, local_pref_degraded: 3, peers: ["+core+"]}"),
		withIBGP(full, "{local_pref_degraded: 1, peers: ["+core+"]}"), // default: only our default goes inside
	} {
		if _, err := Parse("t", []byte(text), nil); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
	for _, tc := range []struct {
		name, text string
		want       IBGPAdvertise
	}{
		{"default when absent", withIBGP(full, "{peers: ["+core+"]}"), AdvertiseDefault},
		{"default", withIBGP(base, "{advertise: default, peers: ["+core+"]}"), AdvertiseDefault},
		{"full with a core and an edge", withIBGP(full, "{advertise: full, peers: ["+core+", "+edge+"]}"), AdvertiseFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t", []byte(tc.text), nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.IBGP.Advertise != tc.want {
				t.Errorf("Advertise = %q, want %q", cfg.IBGP.Advertise, tc.want)
			}
		})
	}
}

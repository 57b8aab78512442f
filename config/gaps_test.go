package config

import (
	"fmt"
	"testing"
)

var sprintf = fmt.Sprintf

// TestSessionGaps: each was accepted before iBGP timers were checked like
// eBGP ones and iBGP neighbors against the uplinks'.
func TestSessionGaps(t *testing.T) {
	for _, tc := range []struct{ name, ibgp, path, msg string }{
		{"ibgp hold time on the wire as 0", "{neighbor: '2001:db8:3000::1', hold_time: 65536s}", "ibgp.peers[0].hold_time", "65536s exceeds 65535s, the most the OPEN message carries"},
		{"ibgp connect retry 0s", "{neighbor: '2001:db8:3000::1', connect_retry: 0s}", "ibgp.peers[0].connect_retry", "0s is below 1s; use 1s or more"},
		{"ibgp fractional hold time", "{neighbor: '2001:db8:3000::1', hold_time: 4500ms}", "ibgp.peers[0].hold_time", "whole seconds"},
		{"ibgp neighbor is an uplink's", "{neighbor: '2001:db8:2000:1::1'}", "ibgp.peers[0].neighbor", "already the bgp neighbor of uplinks[1] (isp-b); an internal router needs an address of its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t", []byte(edit(t, base, "profile: lab", "profile: lab\nibgp: {peers: ["+tc.ibgp+"]}")), nil)
			assertProblem(t, err, tc.path, tc.msg)
		})
	}
	t.Run("ebgp hold time", func(t *testing.T) {
		_, err := Parse("t", []byte(edit(t, base, "peer_asn: 64502,", "peer_asn: 64502, hold_time: 65536s,")), nil)
		assertProblem(t, err, "uplinks[1].bgp.hold_time", "65536s exceeds 65535s")
	})
	t.Run("ibgp accepted", func(t *testing.T) {
		cfg, err := Parse("t", []byte(edit(t, base, "profile: lab", "profile: lab\nibgp: {peers: [{neighbor: '2001:db8:3000::1', hold_time: 65535s, connect_retry: 1s}]}")), nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := cfg.IBGP.Peers[0]; p.HoldTime.Seconds() != 65535 || p.ConnectRetry.Seconds() != 1 {
			t.Fatalf("peer = %+v", p)
		}
	})
}

// TestHealthHoldDownDeprecated: uplinks[].health.hold_down is still checked
// as a duration, and advised against.
func TestHealthHoldDownDeprecated(t *testing.T) {
	const block = "interface: eth-b\n    health: {targets: ['icmp://2001:db8:9000:1::10', 'icmp://2001:db8:9000:1::11', 'icmp://2001:db8:9000:1::12'], hold_down: %s}"
	_, err := Parse("t", []byte(edit(t, base, "interface: eth-b", sprintf(block, "5"))), nil)
	assertProblem(t, err, "uplinks[1].health.hold_down", `"5" has no unit`)
	cfg, err := Parse("t", []byte(edit(t, base, "interface: eth-b", sprintf(block, "5s"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	advice := Advice(cfg)
	if len(advice) != 1 || advice[0].Path != "uplinks[1].health.hold_down" ||
		advice[0].Message != "deprecated and ignored: controller.hold_down is the single hold-down (it applies to isp-b too); remove this key" {
		t.Fatalf("advice = %v", advice)
	}
}

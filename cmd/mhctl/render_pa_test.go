package main

import (
	"bytes"
	"testing"
	"time"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// samplePA: a PA site with ISP-A down (its mapping kept: the link is up)
// and a DNS update failing with a bad key while the server still holds
// both addresses.
func samplePA() *apiv1.Status {
	return &apiv1.Status{
		At: at(-time.Second), Mode: "pa",
		Uplinks: []*apiv1.Uplink{
			{Name: "isp-a", Interface: "eth-a", State: "down", Reason: "0/1 targets up", Probes: &apiv1.Probes{Probed: true, Verdict: "down", ReadAt: at(0)},
				Translation: &apiv1.Translation{InternalPrefix: "fd7a:5e1d:9c00::/48", PaPrefix: "2001:db8:1001::/48", Active: true, Hairpin: true, OutPackets: 1200, OutBytes: 96000, InPackets: 1100, InBytes: 88000, Hairpinned: 3},
				Nat44:       "198.18.1.2"},
			{Name: "isp-b", Interface: "eth-b", State: "up", Reason: "1/1 targets up", Egress: true, Metric: 110, Probes: &apiv1.Probes{Probed: true, Verdict: "up", ReadAt: at(0)},
				Translation: &apiv1.Translation{InternalPrefix: "fd7a:5e1d:9c00::/48", PaPrefix: "2001:db8:2001::/48", Active: true, OutPackets: 50, OutBytes: 4000},
				Nat44:       "interface"},
		},
		Dns: &apiv1.DNS{Zone: "site.example.", Via: []string{"isp-b"}, LastAttempt: at(-2 * time.Second), Failures: 3, NextRetry: at(2 * time.Second),
			LastError: "dnsupdate: server rejects the key: BADKEY; key name, algorithm and secret must match the server's key statement",
			Hosts: []*apiv1.DNSHost{
				{Name: "www", Desired: []string{"2001:db8:2001:1::80"}, Published: []string{"2001:db8:1001:1::80", "2001:db8:2001:1::80"}, Known: true},
				{Name: "@", Desired: []string{"2001:db8:2001:1::81"}},
			}},
	}
}

func TestGoldenPA(t *testing.T) {
	var b bytes.Buffer
	if err := renderStatus(&b, samplePA(), now); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-pa", b.String())
	b.Reset()
	if err := renderDNS(&b, samplePA(), now); err != nil {
		t.Fatal(err)
	}
	golden(t, "dns", b.String())
	b.Reset()
	if err := renderDNS(&b, sampleStatus(), now); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "DNS updates are PA mode's; this site runs in mode pi\n" {
		t.Errorf("mhctl dns on a PI site: %q", got)
	}
}

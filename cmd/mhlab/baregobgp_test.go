package main

import (
	"net/netip"
	"testing"
)

// TestParseBareNeighbor: ASN@ADDRESS for both families; anything else is
// refused with the expected form in the message.
func TestParseBareNeighbor(t *testing.T) {
	for in, want := range map[string]bareNeighbor{
		"64510@198.51.100.1":       {asn: 64510, addr: netip.MustParseAddr("198.51.100.1")},
		"64510@2001:db8:ffff:1::1": {asn: 64510, addr: netip.MustParseAddr("2001:db8:ffff:1::1")},
	} {
		got, err := parseBareNeighbor(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "64510", "198.51.100.1", "0@198.51.100.1", "x@198.51.100.1", "64510@host.example", "4294967296@198.51.100.1"} {
		if n, err := parseBareNeighbor(in); err == nil {
			t.Errorf("%q: accepted as %+v", in, n)
		}
	}
}

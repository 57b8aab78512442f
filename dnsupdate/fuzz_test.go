package dnsupdate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzParseAnswer feeds arbitrary DNS messages to the parser of the
// server's answers: it must not panic, and must return only IPv6 addresses,
// sorted and unique, each present as an AAAA record of the asked name.
func FuzzParseAnswer(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("www.site.example.", dns.TypeAAAA)
	m.Answer = []dns.RR{
		&dns.AAAA{Hdr: dns.RR_Header{Name: "WWW.site.example.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 30}, AAAA: netip.MustParseAddr("2001:db8:1001::80").AsSlice()},
		&dns.AAAA{Hdr: dns.RR_Header{Name: "api.site.example.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 30}, AAAA: netip.MustParseAddr("2001:db8:1001::81").AsSlice()},
		&dns.A{Hdr: dns.RR_Header{Name: "www.site.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: netip.MustParseAddr("192.0.2.80").AsSlice()},
	}
	wire, err := m.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(wire)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r dns.Msg
		if err := r.Unpack(b); err != nil {
			return
		}
		s := parseAnswer(&r, "www.site.example.")
		if !slices.IsSortedFunc(s.addrs, netip.Addr.Compare) || len(slices.Compact(slices.Clone(s.addrs))) != len(s.addrs) {
			t.Fatalf("addresses not sorted and unique: %v", s.addrs)
		}
		for _, a := range s.addrs {
			found := false
			for _, rr := range r.Answer {
				if x, ok := rr.(*dns.AAAA); ok && strings.EqualFold(x.Hdr.Name, "www.site.example.") && addrOf(x) == a {
					found = true
				}
			}
			if !a.Is6() || !found {
				t.Fatalf("address %v is not an AAAA record of the name in %v", a, r.Answer)
			}
		}
		if len(s.addrs) == 0 && s.ttl != 0 {
			t.Fatalf("ttl %d without records", s.ttl)
		}
	})
}

// FuzzQualify feeds arbitrary host names: qualify must not panic, and a
// name it accepts is a valid, lowercase, fully qualified name inside the zone.
func FuzzQualify(f *testing.F) {
	for _, s := range []string{"www", "@", "WWW.Site.Example.", "a.b.c", "", ".", "x.other.example.", strings.Repeat("a.", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := qualify("site.example.", name)
		if err != nil {
			return
		}
		if _, ok := dns.IsDomainName(got); !ok || !dns.IsFqdn(got) || got != strings.ToLower(got) || !dns.IsSubDomain("site.example.", got) {
			t.Fatalf("qualify(%q) = %q: not a lowercase FQDN inside the zone", name, got)
		}
	})
}

func addrOf(x *dns.AAAA) netip.Addr {
	a, _ := netip.AddrFromSlice(x.AAAA)
	return a
}

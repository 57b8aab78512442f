package config

import "testing"

// FuzzParsePrincipal: api.allow entries come from the configuration file.
// A principal the parser takes has a kind it knows and a value, and its
// kind:value form parses back to the same principal.
func FuzzParsePrincipal(f *testing.F) {
	for _, s := range []string{"cn:noc", "DNS:edge-1.example", "email:noc@example.test", "uri:spiffe://example.test/noc", "ip:2001:db8::1", "ip:fe80::1%eth0", "ip:192.0.2.1", "ip:nope", "cn:", "x:y", ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrincipal(s)
		if err != nil {
			return
		}
		switch p.Kind {
		case PrincipalCN, PrincipalDNS, PrincipalEmail, PrincipalURI, PrincipalIP:
		default:
			t.Fatalf("%q parsed with kind %q", s, p.Kind)
		}
		if p.Value == "" {
			t.Fatalf("%q parsed with no value", s)
		}
		back, err := ParsePrincipal(p.String())
		if err != nil || back != p {
			t.Fatalf("%q parsed as %v, which parses back as %v, %v", s, p, back, err)
		}
	})
}

package nat44

import (
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  string // substring naming the field and the fix; "" for valid
	}{
		{"snat and masquerade", []Rule{ruleA, ruleB}, ""},
		{"disjoint on one device", []Rule{{Device: "ua", Inside: p("192.0.2.0/25")}, {Device: "ua", Inside: p("192.0.2.128/25")}}, ""},
		{"no device", []Rule{{Inside: inside}}, `device "" is not an interface name`},
		{"long device", []Rule{{Device: "a-very-long-name", Inside: inside}}, "1-15 bytes"},
		{"ipv6 inside", []Rule{{Device: "ua", Inside: p("fd7a:5e1d:9c00::/48")}}, "give the site's IPv4 prefix"},
		{"host bits", []Rule{{Device: "ua", Inside: p("192.0.2.1/24")}}, "use 192.0.2.0/24"},
		{"ipv6 source", []Rule{{Device: "ua", Inside: inside, Source: netip.MustParseAddr("2001:db8::1")}}, "source 2001:db8::1"},
		{"overlap", []Rule{ruleA, ruleA25}, "overlaps rules[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.rules)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, r := range []Rule{ruleA, ruleB, ruleA25} {
		got, ok := parseKey([]byte(ruleKey(r)))
		if !ok || got != r {
			t.Errorf("parseKey(key(%v)) = %v, %v", r, got, ok)
		}
	}
}

// FuzzParseKey: rule user data comes from the kernel, where anything with
// CAP_NET_ADMIN may have written it. parseKey must not panic, and what it
// accepts must be a valid rule whose key is the input.
func FuzzParseKey(f *testing.F) {
	for _, r := range []Rule{ruleA, ruleB, ruleA25} {
		f.Add([]byte(ruleKey(r)))
	}
	f.Add([]byte("mh1 ua 192.0.2.0/24"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := parseKey(b)
		if !ok {
			return
		}
		if err := validate([]Rule{r}); err != nil {
			t.Fatalf("accepted an invalid rule %v: %v", r, err)
		}
		if ruleKey(r) != string(b) {
			t.Fatalf("key %q parsed to %v, whose key is %q", b, r, ruleKey(r))
		}
	})
}

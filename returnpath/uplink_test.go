package returnpath

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	in := netip.MustParsePrefix("fd7a:5e1d:9c00::/48")
	a, b := Uplink{Device: "ua", Mark: 1}, Uplink{Device: "ub", Mark: 2}
	for _, tc := range []struct {
		name    string
		inside  netip.Prefix
		uplinks []Uplink
		want    string // part of the error; empty: valid
	}{
		{"two uplinks", in, []Uplink{a, b}, ""},
		{"none", in, nil, ""},
		{"IPv4 inside", netip.MustParsePrefix("192.0.2.0/24"), []Uplink{a}, "internal IPv6 prefix"},
		{"host bits", netip.MustParsePrefix("fd7a:5e1d:9c00::1/48"), []Uplink{a}, "host bits set; use fd7a:5e1d:9c00::/48"},
		{"no device", in, []Uplink{{Mark: 1}}, "not an interface name"},
		{"long device", in, []Uplink{{Device: strings.Repeat("x", 16), Mark: 1}}, "not an interface name"},
		{"no mark", in, []Uplink{{Device: "ua"}}, "mark 0 is no mark"},
		{"same device", in, []Uplink{a, {Device: "ua", Mark: 2}}, "device also at uplinks[0]"},
		{"same mark", in, []Uplink{a, {Device: "ub", Mark: 1}}, "mark 0x1 also at uplinks[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.inside, tc.uplinks)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v; want one containing %q", err, tc.want)
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	u := unit{Uplink: Uplink{Device: "eth1.100", Mark: 0x4d480101}, inside: netip.MustParsePrefix("fd7a:5e1d:9c00::/48"), timeout: 30 * time.Minute, size: 1 << 18}
	for _, r := range []role{roleOpenTCP, roleOpenUDP, roleReply} {
		got, gr, ok := parseKey([]byte(u.key(r)))
		if !ok || got != u || gr != r {
			t.Errorf("parseKey(%q) = %+v, %q, %v", u.key(r), got, gr, ok)
		}
	}
	other := u
	other.timeout = time.Minute
	if u.setName() == other.setName() {
		t.Error("a changed timeout keeps the set name: Set would not replace the set")
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add([]byte("mh1 reply ua 0x4d480100 fd00:1::/64 60 1024"))
	f.Add([]byte("mh1 open-tcp eth1 0x1 fd7a:5e1d:9c00::/48 1800 262144"))
	f.Add([]byte("mh1 open-udp  0x0 ::/0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, r, ok := parseKey(b)
		if !ok {
			return
		}
		// What parses is valid and renders back to the same bytes.
		if err := validate(u.inside, []Uplink{u.Uplink}); err != nil {
			t.Fatalf("parseKey(%q) accepted an invalid uplink: %v", b, err)
		}
		if u.key(r) != string(b) {
			t.Fatalf("parseKey(%q) renders back as %q", b, u.key(r))
		}
	})
}

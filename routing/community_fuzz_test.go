package routing

import "testing"

// Communities come from configuration files and API requests. A text the
// parsers take must name the community it returns: its canonical form
// parses back to the same value.

func FuzzParseCommunity(f *testing.F) {
	for _, s := range []string{"64501:100", "65535:0", "0:0", "65536:1", "1:65536", "-1:2", "+1:2", "1:", ":1", "1:2:3", "0100:7", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommunity(s)
		if err != nil {
			return
		}
		back, err := ParseCommunity(c.String())
		if err != nil || back != c {
			t.Fatalf("%q parsed as %s, which parses back as %s, %v", s, c, back, err)
		}
	})
}

func FuzzParseLargeCommunity(f *testing.F) {
	for _, s := range []string{"64500:1:1", "4294967295:4294967295:4294967295", "4294967296:0:0", "1:2", "1:2:3:4", "a:b:c", "::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLargeCommunity(s)
		if err != nil {
			return
		}
		back, err := ParseLargeCommunity(l.String())
		if err != nil || back != l {
			t.Fatalf("%q parsed as %s, which parses back as %s, %v", s, l, back, err)
		}
	})
}

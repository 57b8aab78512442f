package routing

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCommunities(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"64501:100", "64501:100", ""},
		{"65535:0", "65535:0", ""},
		{"0:0", "0:0", ""},
		{"65536:1", "", "not a community"},
		{"64501", "", "not a community"},
		{"a:b", "", "not a community"},
	} {
		c, err := ParseCommunity(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseCommunity(%q) = %v, %v; want an error with %q", tc.in, c, err, tc.err)
		case tc.err == "" && (err != nil || c.String() != tc.want):
			t.Errorf("ParseCommunity(%q) = %v, %v; want %s", tc.in, c, err, tc.want)
		}
	}
	if c, _ := ParseCommunity("65535:0"); c != CommunityGracefulShutdown {
		t.Errorf("65535:0 = %#x; want CommunityGracefulShutdown %#x", uint32(c), uint32(CommunityGracefulShutdown))
	}
	for _, tc := range []struct{ in, err string }{
		{"64500:1:1", ""},
		{"4294967295:4294967295:0", ""},
		{"4294967296:1:1", "not a large community"},
		{"64500:1", "not a large community"},
	} {
		l, err := ParseLargeCommunity(tc.in)
		if (err != nil) != (tc.err != "") || (err == nil && l.String() != tc.in) {
			t.Errorf("ParseLargeCommunity(%q) = %v, %v", tc.in, l, err)
		}
	}
}

func TestAnnouncementEqual(t *testing.T) {
	med1, med1b, med2 := uint32(1), uint32(1), uint32(2)
	base := Announcement{Prefix: netip.MustParsePrefix("2001:db8:face::/48"), Prepend: 1, Communities: []Community{1}, MED: &med1}
	same := base
	same.MED = &med1b // equal value, other pointer
	if !base.Equal(same) {
		t.Error("announcements differing only in the MED pointer compare unequal")
	}
	for name, mut := range map[string]func(*Announcement){
		"prepend":     func(a *Announcement) { a.Prepend = 2 },
		"med":         func(a *Announcement) { a.MED = &med2 },
		"no med":      func(a *Announcement) { a.MED = nil },
		"communities": func(a *Announcement) { a.Communities = []Community{2} },
		"gshut":       func(a *Announcement) { a.GracefulShutdown = true },
		"large":       func(a *Announcement) { a.LargeCommunities = []LargeCommunity{{Global: 1}} },
	} {
		other := base
		mut(&other)
		if base.Equal(other) {
			t.Errorf("%s: announcements compare equal", name)
		}
	}
}

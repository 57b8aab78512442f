package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/routing"
)

// TestMarksReservedInConfig: every large community the speaker puts on its
// own routes uses a first local value the configuration refuses for
// uplinks[].bgp.large_communities, so the strip on export never removes
// an operator's community.
func TestMarksReservedInConfig(t *testing.T) {
	for name, v := range map[string]uint32{"export mark": markLocal1, "default mark": defaultMarkLocal1, "not-inside mark": insideLocal1} {
		if v < config.ReservedLargeLocal1Min || v > config.ReservedLargeLocal1Max {
			t.Errorf("%s uses node.asn:%d:*, outside the reserved %d-%d", name, v, config.ReservedLargeLocal1Min, config.ReservedLargeLocal1Max)
		}
	}
}

// TestMarkPlan walks the slots through the changes a controller makes,
// both ways: in place a slot keeps its mark (and a withdrawal leaves it
// dead on the path) and its uplink is reset; re-originated a change is a
// new mark on a new path and nothing is reset.
func TestMarkPlan(t *testing.T) {
	cfg := policyTestConfig(t) // isp-a, isp-b; two site prefixes
	// Announcements are normalized: sorted by prefix, IPv4 first.
	v4, v6 := netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:face::/48")
	if !slices.Contains(cfg.Site.Prefixes, v4) || !slices.Contains(cfg.Site.Prefixes, v6) {
		t.Fatalf("test broken: site prefixes %v", cfg.Site.Prefixes)
	}
	base := func() map[string][]routing.Announcement {
		out := map[string][]routing.Announcement{}
		for k, v := range BaseAnnouncements(cfg) {
			out[k] = normalize(v, cfg.Site.Prefixes)
		}
		return out
	}
	withdrawnA := func() map[string][]routing.Announcement {
		out := base()
		delete(out, "isp-a")
		return out
	}
	var m markTable
	step := func(name string, want map[string][]routing.Announcement, inPlace bool, wantMarks, wantReset string) {
		t.Helper()
		next, reset := m.plan(cfg, want, inPlace)
		var parts []string
		for _, u := range []string{"isp-a", "isp-b"} {
			for _, p := range []netip.Prefix{v4, v6} {
				if sl, ok := next[slotKey{u, p}]; ok {
					parts = append(parts, fmt.Sprintf("%s/%s=%d%s", u, map[bool]string{true: "v4", false: "v6"}[p == v4], sl.id, map[bool]string{true: "", false: "(dead)"}[sl.live]))
				}
			}
		}
		var rs []string
		for u := range reset {
			rs = append(rs, u)
		}
		slices.Sort(rs)
		if got := strings.Join(parts, " "); got != wantMarks {
			t.Errorf("%s: slots %s; want %s", name, got, wantMarks)
		}
		if got := strings.Join(rs, ","); got != wantReset {
			t.Errorf("%s: reset %q; want %q", name, got, wantReset)
		}
		m.slots = next
	}

	step("first announcement", base(), true, "isp-a/v4=1 isp-a/v6=2 isp-b/v4=3 isp-b/v6=4", "")
	step("the same again", base(), true, "isp-a/v4=1 isp-a/v6=2 isp-b/v4=3 isp-b/v6=4", "")
	prepended := base()
	prepended["isp-a"][0].Prepend = 2
	step("in place: a prepend on isp-a", prepended, true, "isp-a/v4=1 isp-a/v6=2 isp-b/v4=3 isp-b/v6=4", "isp-a")
	if got := m.slots[slotKey{"isp-a", v4}].attrs.Prepend; got != 2 {
		t.Errorf("in place: isp-a's v4 slot prepends %d; want 2", got)
	}
	step("in place: isp-a withdrawn", withdrawnA(), true, "isp-a/v4=1(dead) isp-a/v6=2(dead) isp-b/v4=3 isp-b/v6=4", "isp-a")
	step("in place: isp-a back", base(), true, "isp-a/v4=1 isp-a/v6=2 isp-b/v4=3 isp-b/v6=4", "isp-a")
	step("in place: withdrawn again", withdrawnA(), true, "isp-a/v4=1(dead) isp-a/v6=2(dead) isp-b/v4=3 isp-b/v6=4", "isp-a")
	// Re-originated: a change is a new mark, and a path that changes sheds
	// its dead marks (the v6 path here, not the v4 one).
	drained := withdrawnA()
	drained["isp-b"][1].GracefulShutdown = true
	step("re-originated: isp-b drains v6", drained, false, "isp-a/v4=1(dead) isp-b/v4=3 isp-b/v6=5", "")
	step("re-originated: all back", base(), false, "isp-a/v4=6 isp-a/v6=8 isp-b/v4=3 isp-b/v6=7", "")
	step("re-originated: isp-a withdrawn", withdrawnA(), false, "isp-b/v4=3 isp-b/v6=7", "")

	// A prefix the configuration no longer has loses its slots, even
	// where the caller still asks for it.
	cut := *cfg
	cut.Site.Prefixes = []netip.Prefix{v6}
	cfg = &cut
	step("in place: v4 removed from the site", withdrawnA(), true, "isp-b/v6=7", "")
}

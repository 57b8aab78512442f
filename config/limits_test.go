package config

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func problemsOf(t testing.TB, err error) []Problem {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v; want a *config.Error", err)
	}
	return ce.Problems
}

// sitePrefixes returns base with site.prefixes replaced by list.
func sitePrefixes(t testing.TB, list []string) string {
	return edit(t, base, "site: {prefixes: [2001:db8:face::/48]}", "site: {prefixes: ["+strings.Join(list, ", ")+"]}")
}

// TestManyCopiesOfOnePrefix is the regression test of the quadratic
// overlap check: 2,000 copies of one prefix made 1,999,000 problems
// (~790 MiB). Now the list's length is one problem and the copies another.
func TestManyCopiesOfOnePrefix(t *testing.T) {
	text := sitePrefixes(t, slicesRepeat("2001:db8:face::/48", 2000))
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	_, err := Parse("test", []byte(text), nil)
	runtime.ReadMemStats(&ms1)
	ps := problemsOf(t, err)
	if len(ps) != 2 {
		t.Fatalf("%d problems; want 2 (too long, listed N times):\n%v", len(ps), err)
	}
	assertProblem(t, err, "site.prefixes", "2000 entries, more than the 256 allowed")
	assertProblem(t, err, "site.prefixes[1]", fmt.Sprintf("listed %d times (first at site.prefixes[0])", MaxSitePrefixes))
	if got := ms1.TotalAlloc - ms0.TotalAlloc; got > 16<<20 {
		t.Errorf("validation allocated %d MiB; want under 16 MiB", got>>20)
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestOverlapsReportedOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []string
		want []string // path: substring
	}{
		{"disjoint", []string{"2001:db8:face::/48", "2001:db8:fade::/48", "2001:db8:f000::/40"}, nil},
		{"nested chain", []string{"2001:db8:face::/48", "2001:db8::/32", "2001:db8:fa00::/40"},
			[]string{"site.prefixes[1]: 2001:db8::/32 overlaps site.prefixes[0] 2001:db8:face::/48", "site.prefixes[2]: 2001:db8:fa00::/40 overlaps site.prefixes[1] 2001:db8::/32"}},
		{"copies inside a cover", []string{"2001:db8:face::/48", "2001:db8:fa00::/40", "2001:db8:face::/48", "2001:db8:face::/48"},
			[]string{"site.prefixes[2]: 2001:db8:face::/48 is listed 3 times (first at site.prefixes[0])", "site.prefixes[1]: 2001:db8:fa00::/40 overlaps site.prefixes[0] 2001:db8:face::/48"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test", []byte(sitePrefixes(t, tc.list)), nil)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ps := problemsOf(t, err)
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(tc.want), strings.Join(tc.want, "\n"))
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w)
				}
				if !found {
					t.Errorf("no problem %q in:\n%s", w, strings.Join(got, "\n"))
				}
			}
		})
	}
}

func TestListLimits(t *testing.T) {
	peer := "{neighbor: '2001:db8:3000::%d'}"
	var peers []string
	for i := range MaxIBGPPeers + 1 {
		peers = append(peers, fmt.Sprintf(peer, i+1))
	}
	targets := slicesRepeat("icmp://2001:db8:9000:1::10", MaxTargets+1)
	for _, tc := range []struct{ name, from, to, path string }{
		{"communities", "peer_asn: 64502,", "peer_asn: 64502, communities: [" + strings.Join(slicesRepeat("64502:1", MaxCommunities+1), ",") + "],", "uplinks[1].bgp.communities"},
		{"large communities", "peer_asn: 64502,", "peer_asn: 64502, large_communities: [" + strings.Join(slicesRepeat("64502:1:1", MaxLargeCommunities+1), ",") + "],", "uplinks[1].bgp.large_communities"},
		{"degraded communities", "interface: eth-b", "interface: eth-b\n    degraded: {communities: [" + strings.Join(slicesRepeat("64502:1", MaxCommunities+1), ",") + "]}", "uplinks[1].degraded.communities"},
		{"targets", "interface: eth-b", "interface: eth-b\n    health: {targets: [" + strings.Join(targets, ",") + "]}", "uplinks[1].health.targets"},
		{"ibgp peers", "profile: lab", "profile: lab\nibgp: {peers: [" + strings.Join(peers, ",") + "]}", "ibgp.peers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test", []byte(edit(t, base, tc.from, tc.to)), nil)
			assertProblem(t, err, tc.path, "entries, more than the")
			if n := len(problemsOf(t, err)); n != 1 {
				t.Errorf("%d problems; want only the length:\n%v", n, err)
			}
		})
	}
	t.Run("uplinks", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("profile: lab\nnode: {router_id: 198.51.100.1, asn: 64500}\nsite: {prefixes: [2001:db8:face::/48]}\nuplinks:\n")
		for i := range MaxUplinks + 1 {
			fmt.Fprintf(&b, "  - {name: isp-%d, interface: eth%d, bgp: {peer_asn: 64501, neighbor: '2001:db8:1000:%x::1'}}\n", i, i, i)
		}
		_, err := Parse("test", []byte(b.String()), nil)
		assertProblem(t, err, "uplinks", fmt.Sprintf("%d entries, more than the %d allowed", MaxUplinks+1, MaxUplinks))
	})
}

func TestProblemsCapped(t *testing.T) {
	var bad []string
	for i := range MaxSitePrefixes {
		bad = append(bad, fmt.Sprintf("bad%d", i))
	}
	_, err := Parse("test", []byte(sitePrefixes(t, bad)), nil)
	ps := problemsOf(t, err)
	if len(ps) != MaxProblems+1 {
		t.Fatalf("%d problems; want %d and a count of the rest", len(ps), MaxProblems+1)
	}
	if got, want := ps[MaxProblems].Message, fmt.Sprintf("... and %d more problems", MaxSitePrefixes-MaxProblems); got != want {
		t.Fatalf("last problem %q; want %q", got, want)
	}
}

// largestConfig is a legal configuration with every capped list at its
// limit.
func largestConfig() string {
	var b strings.Builder
	b.WriteString("profile: lab\nnode: {router_id: 198.51.100.1, asn: 64500}\nsite:\n  prefixes:\n")
	for i := range MaxSitePrefixes {
		fmt.Fprintf(&b, "    - 2001:db8:%x::/48\n", i)
	}
	comms := strings.Join(slicesRepeat("64501:1", MaxCommunities), ", ")
	large := strings.Join(slicesRepeat("64500:1:1", MaxLargeCommunities), ", ")
	var targets []string
	for i := range MaxTargets {
		targets = append(targets, fmt.Sprintf("icmp://2001:db8:9000:1::%x", i+1))
	}
	b.WriteString("uplinks:\n")
	for i := range MaxUplinks {
		fmt.Fprintf(&b, "  - name: isp-%d\n    interface: eth%d\n    bgp: {peer_asn: 64501, neighbor: '2001:db8:1000:%x::1', communities: [%s], large_communities: [%s]}\n", i, i, i, comms, large)
		fmt.Fprintf(&b, "    degraded: {communities: [%s]}\n    health: {targets: [%s]}\n", comms, strings.Join(targets, ", "))
	}
	b.WriteString("ibgp:\n  peers:\n")
	for i := range MaxIBGPPeers {
		fmt.Fprintf(&b, "    - {neighbor: '2001:db8:3000::%x'}\n", i+1)
	}
	return b.String()
}

func TestLargestConfigIsLegal(t *testing.T) {
	cfg, err := Parse("largest", []byte(largestConfig()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Site.Prefixes) != MaxSitePrefixes || len(cfg.Uplinks) != MaxUplinks || len(cfg.IBGP.Peers) != MaxIBGPPeers ||
		len(cfg.Uplinks[0].Health.Targets) != MaxTargets || len(cfg.Uplinks[0].BGP.Communities) != MaxCommunities {
		t.Fatal("largest config lost entries")
	}
}

// BenchmarkValidateLargest validates the largest legal configuration; run
// with -benchmem for allocations.
func BenchmarkValidateLargest(b *testing.B) {
	text := []byte(largestConfig())
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := Parse("largest", text, nil); err != nil {
			b.Fatal(err)
		}
	}
}

package bgp

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// coreCounts counts the core test peer's learned IPv4 routes by LOCAL_PREF.
func coreCounts(t *testing.T, p *testPeer) map[uint32]int {
	t.Helper()
	out := map[uint32]int{}
	learnedPaths(t, p, func(_ string, attrs []bgp.PathAttributeInterface) {
		for _, a := range attrs {
			if lp, ok := a.(*bgp.PathAttributeLocalPref); ok {
				out[lp.Value]++
			}
		}
	})
	return out
}

// coreGaps describes, for a failure message, up to ten of ISP-A's n fed
// prefixes and ISP-B's two that the core does not hold, each with the
// speaker's own paths to it (global table: neighbor, best, LOCAL_PREF),
// so that a lost advertisement can be told from a lost import.
func coreGaps(t *testing.T, sp *Speaker, core *testPeer, n int) string {
	t.Helper()
	held := coreView(t, core)
	want := []string{"203.0.113.0/24", "192.0.2.0/24"}
	for i := range n {
		want = append(want, feedPrefix(i).String())
	}
	var b strings.Builder
	missing := 0
	for _, p := range want {
		if _, ok := held[p]; ok {
			continue
		}
		if missing++; missing > 10 {
			continue
		}
		fmt.Fprintf(&b, "core lacks %s; the speaker's paths:", p)
		must(t, sp.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC,
			Prefixes: []*apiutil.LookupPrefix{{Prefix: p}}}, func(_ bgp.NLRI, paths []*apiutil.Path) {
			for _, path := range paths {
				lp := "-"
				for _, a := range path.Attrs {
					if l, ok := a.(*bgp.PathAttributeLocalPref); ok {
						lp = strconv.Itoa(int(l.Value))
					}
				}
				fmt.Fprintf(&b, " [from %s best=%v lp=%s]", path.PeerAddress, path.Best, lp)
			}
		}))
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%d of %d expected prefixes missing at the core, which holds %d", missing, len(want), len(held))
	return b.String()
}

// TestInsideDemoteCost measures what a health change of an uplink with a
// full table costs until the core has seen it: demote (up -> degraded),
// withdraw (-> down) and restore (-> up), against the baseline of the same
// run, the initial import and advertisement of the table. The core is
// polled every 50 ms, every second above 20,000 routes. ISP-B's session
// is up with a table of its own (a hundredth of ISP-A's) and is not
// touched. Figures are logged, not asserted (the machine is shared); the
// routes the core holds are. MH_INSIDE_ROUTES sets the table size
// (default 5000; docs/benchmarks.md has 200000).
func TestInsideDemoteCost(t *testing.T) {
	if testing.Short() {
		t.Skip("imports thousands of routes")
	}
	n := 5000
	if v := os.Getenv("MH_INSIDE_ROUTES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1<<20 {
			t.Fatalf("MH_INSIDE_ROUTES=%q: want a number of routes, 1-1048576", v)
		}
	}
	port := freePort(t)
	peerA := startTestPeer(t, "127.0.0.2", port, 64501, nil)
	peerA.feedDistinct(t, "127.0.0.2", n)
	startTestPeer(t, "127.0.0.3", port, 64502, []string{"203.0.113.0/24", "192.0.2.0/24"})
	core := startTestPeer(t, "127.0.0.4", port, 64500, nil)
	cfg := insideConfig(t, true)
	cfg.Uplinks[0].BGP.MaxPrefixes = uint32(2 * n)
	sp := startSpeaker(t, port, cfg)
	ctx := context.Background()

	poll := 50 * time.Millisecond
	if n > 20000 {
		poll = time.Second
	}
	step := func(what string, prefs map[string]uint32, want map[uint32]int) time.Duration {
		t.Helper()
		start := time.Now()
		if prefs != nil {
			must(t, sp.SetInsideLocalPrefs(ctx, prefs))
		}
		// A listing of a large table costs CPU the speaker competes for:
		// poll it seldom (the time is then known to within poll).
		deadline := time.Now().Add(15 * time.Minute)
		for {
			got := coreCounts(t, core)
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: core has routes by LOCAL_PREF %v; want %v\n%s", what, got, want, coreGaps(t, sp, core, n))
			}
			time.Sleep(poll)
		}
	}
	must(t, sp.SetInsideLocalPrefs(ctx, map[string]uint32{"isp-a": 200, "isp-b": 200}))
	_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
	must(t, err)
	step("initial import", nil, map[uint32]int{200: n + 2})
	// From ISP-A's session coming up: the baseline is the table's
	// import and advertisement, not the connection's set-up.
	var base time.Duration
	for _, s := range sp.Sessions() {
		if s.Uplink == "isp-a" {
			base = time.Since(s.Since)
		}
	}
	demote := step("isp-a degraded", map[string]uint32{"isp-a": 100, "isp-b": 200}, map[uint32]int{100: n, 200: 2})
	down := step("isp-a down", map[string]uint32{"isp-b": 200}, map[uint32]int{200: 2})
	up := step("isp-a up", map[string]uint32{"isp-a": 200, "isp-b": 200}, map[uint32]int{200: n + 2})
	t.Logf("%d routes: initial import and advertisement %s (from the session's establishment); demote %s (%.2fx), withdraw %s (%.2fx), restore %s (%.2fx)",
		n, base.Round(time.Millisecond), demote.Round(time.Millisecond), float64(demote)/float64(base),
		down.Round(time.Millisecond), float64(down)/float64(base), up.Round(time.Millisecond), float64(up)/float64(base))
}

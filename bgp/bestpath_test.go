package bgp

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReplayBest: after ReplayBest, OnBestSnapshot receives exactly the
// best-path table (every accepted prefix with the uplink of its best path,
// as OnBest had reported them one change at a time) in one delivery, and
// the changes after it still come to OnBest; ReplayBest without
// OnBestSnapshot is refused.
func TestReplayBest(t *testing.T) {
	port := freePort(t)
	startTestPeer(t, "127.0.0.2", port, 64501, []string{"0.0.0.0/0"})
	peerB := startTestPeer(t, "127.0.0.3", port, 64502, []string{"0.0.0.0/0", "203.0.113.0/24", "198.19.0.0/24 64510"})
	cfg := fullImportConfig(t)
	var mu sync.Mutex
	best := map[netip.Prefix]string{}
	var snapshots []map[netip.Prefix]string
	onBest := func(bs []BestRoute) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bs {
			if b.Uplink == "" {
				delete(best, b.Prefix)
			} else {
				best[b.Prefix] = b.Uplink
			}
		}
	}
	onSnapshot := func(bs []BestRoute) {
		mu.Lock()
		defer mu.Unlock()
		snap := map[netip.Prefix]string{}
		for _, b := range bs {
			if b.Uplink != "" {
				snap[b.Prefix] = b.Uplink
			}
		}
		snapshots = append(snapshots, snap)
		best = maps.Clone(snap)
	}
	ctx := context.Background()
	plain := New(Options{PeerPort: uint32(port), FirstAnnounceWait: time.Millisecond, OnBest: onBest})
	if err := plain.ReplayBest(); err == nil {
		t.Error("ReplayBest before Start: no error")
	}
	sp := New(Options{PeerPort: uint32(port), FirstAnnounceWait: time.Millisecond, OnBest: onBest, OnBestSnapshot: onSnapshot})
	must(t, sp.Start(ctx, cfg))
	defer sp.Stop(ctx)
	want := map[netip.Prefix]string{
		netip.MustParsePrefix("0.0.0.0/0"):      "isp-a", // tie broken by the lower router ID
		netip.MustParsePrefix("203.0.113.0/24"): "isp-b",
		netip.MustParsePrefix("198.19.0.0/24"):  "isp-b",
	}
	eventually(t, "best paths reported one change at a time", 20*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(best) == 3 && best[netip.MustParsePrefix("198.19.0.0/24")] == "isp-b", fmt.Sprint(best)
	})
	mu.Lock()
	want[netip.MustParsePrefix("0.0.0.0/0")] = best[netip.MustParsePrefix("0.0.0.0/0")] // whichever GoBGP chose
	mu.Unlock()
	must(t, sp.ReplayBest())
	eventually(t, "a snapshot", 10*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(snapshots) == 1, fmt.Sprint(len(snapshots), " snapshots")
	})
	mu.Lock()
	if !maps.Equal(snapshots[0], want) {
		t.Errorf("snapshot %v; want %v", snapshots[0], want)
	}
	mu.Unlock()
	// A change after the replay comes to OnBest, not as another snapshot.
	peerB.originate(t, "127.0.0.3", "198.19.1.0/24")
	eventually(t, "the change after the replay", 10*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return best[netip.MustParsePrefix("198.19.1.0/24")] == "isp-b" && len(snapshots) == 1, fmt.Sprint(best, len(snapshots))
	})
	// Checked before anything else: a second GoBGP server in the process
	// would race with the first on GoBGP's globals.
	noSnap := New(Options{PeerPort: uint32(port), OnBest: onBest})
	if err := noSnap.ReplayBest(); err == nil || !strings.Contains(err.Error(), "OnBestSnapshot") {
		t.Errorf("ReplayBest without OnBestSnapshot: %v; want it refused for that", err)
	}
}

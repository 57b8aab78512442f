package controller

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/routing"
)

// TestStatusLiveCounts: Status shows the speaker's prefix and soft reset
// counts and import phase as of the call, with no pass in between, and keeps the pass's session states; the
// stored snapshot is not modified.
func TestStatusLiveCounts(t *testing.T) {
	cfg := loopConfig(t)
	sp := newFakeSpeaker(t, cfg)
	l := New(cfg, Deps{Speaker: sp, Egress: &fakeEgress{}, Health: newFakeHealth(cfg)})
	a, b, gone := netip.MustParseAddr("2001:db8:a::1"), netip.MustParseAddr("2001:db8:b::1"), netip.MustParseAddr("2001:db8:c::1")
	pass := []routing.SessionState{
		{Uplink: "isp-a", Neighbor: a, State: "established", Received: 10, Accepted: 9},
		{Uplink: "isp-b", Neighbor: b, State: "active"},
		{Uplink: "isp-c", Neighbor: gone, State: "established", Received: 5, Accepted: 5},
	}
	l.status.Store(&Status{Sessions: pass})
	sp.mu.Lock()
	sp.sessions = []routing.SessionState{
		{Uplink: "isp-a", Neighbor: a, State: "idle", Received: 900000, Accepted: 899000, SoftResetsOut: 2},
		{Uplink: "isp-b", Neighbor: b, State: "established", Received: 7, Accepted: 0, ImportPhase: routing.ImportCounting},
	}
	sp.mu.Unlock()
	want := []routing.SessionState{
		{Uplink: "isp-a", Neighbor: a, State: "established", Received: 900000, Accepted: 899000, SoftResetsOut: 2},
		{Uplink: "isp-b", Neighbor: b, State: "active", Received: 7, ImportPhase: routing.ImportCounting},
		{Uplink: "isp-c", Neighbor: gone, State: "established", Received: 5, Accepted: 5},
	}
	if d := cmp.Diff(want, l.Status().Sessions, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); d != "" {
		t.Errorf("Status().Sessions (-want +got):\n%s", d)
	}
	if got := l.status.Load().Sessions[0].Received; got != 10 {
		t.Errorf("the stored snapshot changed: isp-a received %d; want 10", got)
	}
}

package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/routing"
)

// fakeSite stands in for the speaker's site-state side: the test sets
// what the other edges say, and reads what the loop told them.
type fakeSite struct {
	sp *fakeSpeaker // its Changed signals a new view, as bgp.Speaker's does

	mu   sync.Mutex
	view routing.SiteView
	sent []routing.UplinkState
}

func (f *fakeSite) SetSiteState(_ context.Context, states []routing.UplinkState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = slices.Clone(states)
	return nil
}

func (f *fakeSite) SiteView() (routing.SiteView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view, nil
}

func (f *fakeSite) setView(v routing.SiteView) {
	f.mu.Lock()
	f.view = v
	f.mu.Unlock()
	select {
	case f.sp.changed <- struct{}{}:
	default:
	}
}

func (f *fakeSite) said() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.sent)
}

// TestLoopTwoEdges: the loop tells the other edges its uplink's state,
// withdraws its lone uplink while the other edge has a usable one, routes
// through that edge, and holds the site (fail-static) once the other
// edge's word ages out; each change of the remote view is an event.
func TestLoopTwoEdges(t *testing.T) {
	cfg := edgeConfig(t, "198.51.100.1", "isp-a", edge2Addr, config.EgressFailover)
	cfg.Controller.StartupWait, cfg.Controller.HoldDown, cfg.Controller.StateDir = 0, 0, t.TempDir()
	// A resync far away: every pass below is caused by a signal.
	cfg.Controller.Resync = time.Hour
	r := &running{sp: newFakeSpeaker(t, cfg), eg: &fakeEgress{}, h: newFakeHealth(cfg)}
	site := &fakeSite{sp: r.sp}
	r.loop = New(cfg, Deps{Speaker: r.sp, Egress: r.eg, Health: r.h, Site: site})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor(t, "isp-a announced, its state told", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		return len(st["isp-a"]) > 0 && site.said() == "[{isp-a up}]", site.said()
	})
	edge2 := netip.MustParseAddr("198.51.100.2")
	site.setView(routing.SiteView{
		Uplinks:  []routing.RemoteUplink{{Edge: edge2, Neighbor: edge2Addr, Uplink: "isp-b", State: "up", Since: t0}},
		Defaults: []routing.RemoteDefault{{Neighbor: edge2Addr, Dst: netip.MustParsePrefix("::/0"), NextHop: edge2Addr}},
	})
	waitFor(t, "the other edge's default behind isp-a's", func() (bool, string) {
		got := r.eg.uplinks()
		return slices.Equal(got, []string{"isp-a/100", "edge 2001:db8:ffff::2/3100"}), fmt.Sprint(got)
	})
	r.h.set("isp-a", health.VerdictDown)
	waitFor(t, "isp-a withdrawn, egress via edge-2 only, no default to the core", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		r.sp.mu.Lock()
		lp := r.sp.lp
		r.sp.mu.Unlock()
		got := r.eg.uplinks()
		return len(st) == 0 && lp == 0 && slices.Equal(got, []string{"edge 2001:db8:ffff::2/3100"}) && site.said() == "[{isp-a down}]",
			fmt.Sprintf("anns=%v lp=%d egress=%v said=%s", st, lp, got, site.said())
	})
	if d := r.loop.Status().Desired; d.FailStatic || d.RemoteUsable != 1 {
		t.Fatalf("fail-static %v, remote usable %d", d.FailStatic, d.RemoteUsable)
	}
	if got := r.loop.Status().Remote.Uplinks; len(got) != 1 || got[0].Uplink != "isp-b" {
		t.Fatalf("status remote uplinks = %+v", got)
	}

	// The session with edge-2 ends: its word is gone, the site is held.
	site.setView(routing.SiteView{})
	waitFor(t, "fail-static: isp-a announced again", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		d := r.loop.Status().Desired
		return len(st["isp-a"]) > 0 && d.FailStatic, fmt.Sprintf("anns=%v fail-static=%v", st, d.FailStatic)
	})
	waitFor(t, "remote changes in the history", func() (bool, string) {
		var got []string
		for _, e := range r.loop.Events(0, 0) {
			if e.Edge != "" {
				got = append(got, fmt.Sprintf("%s/%s:%s->%s %s", e.Edge, e.Uplink, e.From, e.To, strings.Join(e.Actions, ",")))
			}
		}
		want := []string{"198.51.100.2/isp-b:unknown->up remote view changed", "198.51.100.2/isp-b:up->unknown remote view expired"}
		return slices.Equal(got, want), fmt.Sprint(got)
	})
}

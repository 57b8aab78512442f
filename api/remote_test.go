package api

import (
	"context"
	"net/netip"
	"testing"
	"time"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/routing"
)

// withRemote gives the fake controller's status another edge's view: one
// usable uplink learned 90 s before t0, one down and stale.
func withRemote(ctl *fakeController) {
	st := *ctl.Status()
	edge := netip.MustParseAddr("198.51.100.2")
	nbr := netip.MustParseAddr("2001:db8:ffff::2")
	st.Remote = routing.SiteView{Uplinks: []routing.RemoteUplink{
		{Edge: edge, Neighbor: nbr, Uplink: "isp-b", State: "up", Since: t0.Add(-90 * time.Second)},
		{Edge: edge, Neighbor: nbr, Uplink: "isp-c", State: "down", Since: t0.Add(-5 * time.Second), Stale: true},
	}}
	st.Desired.RemoteUsable = 1
	ctl.status.Store(&st)
}

// TestStatusShowsRemoteUplinks: GetStatus lists the other edges' uplinks
// with their state and age, and events about them name the edge.
func TestStatusShowsRemoteUplinks(t *testing.T) {
	ctl := newFakeController()
	withRemote(ctl)
	svc := NewServer(Options{Controller: ctl, Config: newFakeConfig(t), Logger: slogDiscard(), Now: func() time.Time { return t0 }})
	resp, err := svc.GetStatus(context.Background(), &apiv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetStatus()
	if st.GetRemoteUsable() != 1 || len(st.GetRemoteUplinks()) != 2 {
		t.Fatalf("remote usable %d, uplinks %v", st.GetRemoteUsable(), st.GetRemoteUplinks())
	}
	r := st.GetRemoteUplinks()[0]
	if r.GetEdge() != "198.51.100.2" || r.GetNeighbor() != "2001:db8:ffff::2" || r.GetUplink() != "isp-b" || r.GetState() != "up" || r.GetAge().AsDuration() != 90*time.Second || r.GetStale() {
		t.Errorf("remote uplink = %v", r)
	}
	if s := st.GetRemoteUplinks()[1]; !s.GetStale() || s.GetState() != "down" {
		t.Errorf("stale remote uplink = %v", s)
	}
	e := eventToProto(controller.Event{Seq: 3, Edge: "198.51.100.2", Uplink: "isp-b", From: controller.StateUp, To: controller.StateDown})
	if e.GetEdge() != "198.51.100.2" || e.GetUplink() != "isp-b" {
		t.Errorf("event = %v", e)
	}
}

// TestMetricsRemoteUplinks: the other edges' uplinks have their own
// series, and their events do not count as this edge's state changes.
func TestMetricsRemoteUplinks(t *testing.T) {
	ctl := newFakeController()
	withRemote(ctl)
	m := NewMetrics(ctl)
	m.now = func() time.Time { return t0 }
	m.onEvent(controller.Event{Seq: 1, Time: t0, Edge: "198.51.100.2", Uplink: "isp-a", From: controller.StateUp, To: controller.StateDown})
	fams := gather(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"multihomed_remote_uplink_state", []string{"edge", "198.51.100.2", "uplink", "isp-b", "state", "up"}, 1},
		{"multihomed_remote_uplink_state", []string{"edge", "198.51.100.2", "uplink", "isp-b", "state", "down"}, 0},
		{"multihomed_remote_uplink_state", []string{"edge", "198.51.100.2", "uplink", "isp-c", "state", "down"}, 1},
		{"multihomed_remote_uplink_age_seconds", []string{"edge", "198.51.100.2", "uplink", "isp-b"}, 90},
		{"multihomed_remote_uplinks_usable", nil, 1},
	} {
		if v := value(t, fams, c.name, c.labels...); v != c.want {
			t.Errorf("%s%v = %v; want %v", c.name, c.labels, v, c.want)
		}
	}
	if f := fams["multihomed_uplink_state_changes_total"]; f != nil && len(f.GetMetric()) > 0 {
		t.Errorf("another edge's event counted as a local state change: %v", f.GetMetric())
	}
}

package api

import (
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/multihomed/multihomed/health"
)

// movingHealth is a HealthReader whose snapshot the test replaces.
type movingHealth struct {
	mu   sync.Mutex
	snap health.Snapshot
}

func (h *movingHealth) Snapshot() health.Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snap
}

func (h *movingHealth) set(bursts, probes, suppressed uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snap = health.Snapshot{Uplinks: []health.UplinkStatus{
		{Name: "isp-a", Verdict: health.VerdictUp},
		{Name: "isp-b", Verdict: health.VerdictDegraded, Bursts: bursts, BurstProbes: probes, BurstsSuppressed: suppressed},
	}}
}

// TestBurstCountersFollowLiveHealth checks that the burst counters are the
// prober's live figures, per uplink, and move between two scrapes with no
// controller pass in between (the controller's snapshot stays the same).
func TestBurstCountersFollowLiveHealth(t *testing.T) {
	ctl := newFakeController()
	m := NewMetrics(ctl)
	h := &movingHealth{}
	m.ReadHealthFrom(h)

	h.set(2, 5, 1)
	fams := gather(t, m)
	for _, c := range []struct {
		name string
		want float64
	}{
		{"multihomed_probe_bursts_total", 2},
		{"multihomed_probe_burst_probes_total", 5},
		{"multihomed_probe_bursts_suppressed_total", 1},
	} {
		if got := value(t, fams, c.name, "uplink", "isp-b"); got != c.want {
			t.Errorf("%s{uplink=isp-b} = %v, want %v", c.name, got, c.want)
		}
		if got := value(t, fams, c.name, "uplink", "isp-a"); got != 0 {
			t.Errorf("%s{uplink=isp-a} = %v, want 0", c.name, got)
		}
		if typ := fams[c.name].GetType(); typ != dto.MetricType_COUNTER {
			t.Errorf("%s is a %v, want a counter", c.name, typ)
		}
	}

	h.set(7, 19, 3)
	fams = gather(t, m)
	if got := value(t, fams, "multihomed_probe_bursts_total", "uplink", "isp-b"); got != 7 {
		t.Errorf("after more bursts: multihomed_probe_bursts_total{uplink=isp-b} = %v, want 7", got)
	}
	if got := value(t, fams, "multihomed_probe_burst_probes_total", "uplink", "isp-b"); got != 19 {
		t.Errorf("after more bursts: multihomed_probe_burst_probes_total{uplink=isp-b} = %v, want 19", got)
	}
	if got := value(t, fams, "multihomed_probe_bursts_suppressed_total", "uplink", "isp-b"); got != 3 {
		t.Errorf("after more bursts: multihomed_probe_bursts_suppressed_total{uplink=isp-b} = %v, want 3", got)
	}
}

// TestBurstCountersFromPassSnapshot checks that without a live reader the
// counters are those of the controller's last pass.
func TestBurstCountersFromPassSnapshot(t *testing.T) {
	ctl := newFakeController()
	st := *ctl.Status()
	st.Health.Uplinks = append([]health.UplinkStatus(nil), st.Health.Uplinks...)
	st.Health.Uplinks[0].Bursts, st.Health.Uplinks[0].BurstProbes = 4, 11
	ctl.status.Store(&st)
	fams := gather(t, NewMetrics(ctl))
	if got := value(t, fams, "multihomed_probe_bursts_total", "uplink", "isp-a"); got != 4 {
		t.Errorf("multihomed_probe_bursts_total{uplink=isp-a} = %v, want 4", got)
	}
	if got := value(t, fams, "multihomed_probe_burst_probes_total", "uplink", "isp-a"); got != 11 {
		t.Errorf("multihomed_probe_burst_probes_total{uplink=isp-a} = %v, want 11", got)
	}
}

package api

import (
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/multihomed/multihomed/controller"
)

// TestInsideMetric: multihomed_uplink_inside_local_pref has a series per
// uplink (0 for one withdrawn from the core) with ibgp.advertise: full,
// and none without it.
func TestInsideMetric(t *testing.T) {
	gather := func(on bool) map[string]*dto.MetricFamily {
		ctl := newFakeController()
		st := *ctl.Status()
		st.Desired.InsideAdvertise = on
		st.Desired.Uplinks = append([]controller.Decision(nil), st.Desired.Uplinks...)
		st.Desired.Uplinks[0].InsideLocalPref = 200
		ctl.status.Store(&st)
		return gather(t, NewMetrics(ctl))
	}
	fams := gather(true)
	if v := value(t, fams, "multihomed_uplink_inside_local_pref", "uplink", "isp-a"); v != 200 {
		t.Errorf("isp-a: %v; want 200", v)
	}
	if v := value(t, fams, "multihomed_uplink_inside_local_pref", "uplink", "isp-b"); v != 0 {
		t.Errorf("isp-b: %v; want 0 (not advertised inside)", v)
	}
	if f, ok := gather(false)["multihomed_uplink_inside_local_pref"]; ok {
		t.Errorf("advertise default: %d series; want none", len(f.GetMetric()))
	}
}

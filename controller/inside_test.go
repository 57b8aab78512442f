package controller

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
)

// TestInsideLocalPref: with ibgp.advertise: full each import: full
// uplink's routes get the default route's ladder for that uplink alone:
// up 200, degraded (even in ECMP mode, where it carries no egress) 100,
// draining or fail-static 100, down or drained 0 (withdrawn from the core).
// An import: default uplink and advertise: default give 0.
func TestInsideLocalPref(t *testing.T) {
	full := func(ecmp bool) *config.Config {
		cfg := testConfig(t)
		cfg.Uplinks[0].BGP.Import = config.ImportFull
		cfg.Uplinks[1].BGP.Import = config.ImportFull
		cfg.IBGP.Advertise = config.AdvertiseFull
		if ecmp {
			cfg.Egress.Mode = config.EgressECMP
		}
		return cfg
	}
	failStatic := full(false)
	failStatic.Uplinks[1].DownAction = config.DownWithdraw // else isp-b announces, and fail-static has no reason to act
	later := t0.Add(time.Minute)
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		obs  func(*Observed)
		want map[string]uint32
	}{
		{"all up", full(false), func(*Observed) {}, map[string]uint32{"isp-a": 200, "isp-b": 200}},
		{"a degraded", full(false), func(o *Observed) { setHealth(o, "isp-a", health.VerdictDegraded) }, map[string]uint32{"isp-a": 100, "isp-b": 200}},
		{"a degraded, ecmp", full(true), func(o *Observed) { setHealth(o, "isp-a", health.VerdictDegraded) }, map[string]uint32{"isp-a": 100, "isp-b": 200}},
		{"a down", full(false), func(o *Observed) { setHealth(o, "isp-a", health.VerdictDown) }, map[string]uint32{"isp-b": 200}},
		{"a draining", full(false), func(o *Observed) {
			o.Overrides = map[string]Override{"isp-a": {Drain: true, Since: later.Add(-30 * time.Second)}}
		}, map[string]uint32{"isp-a": 100, "isp-b": 200}},
		{"a drained", full(false), func(o *Observed) {
			o.Overrides = map[string]Override{"isp-a": {Drain: true, Since: later.Add(-61 * time.Second)}}
		}, map[string]uint32{"isp-b": 200}},
		{"fail-static", failStatic, func(o *Observed) {
			for _, u := range []string{"isp-a", "isp-b"} {
				setHealth(o, u, health.VerdictDown)
			}
			o.Uplinks["isp-c"] = UplinkObservation{Sessions: 1}
		}, map[string]uint32{"isp-a": 100, "isp-b": 100}},
		{"advertise default", testConfig(t), func(*Observed) {}, map[string]uint32{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := obsAllUp(later)
			obs.StartupDone = true
			tc.obs(&obs)
			d := Decide(tc.cfg, obs)
			if d2 := Decide(tc.cfg, obs); cmp.Diff(d.InsideLocalPrefs(), d2.InsideLocalPrefs()) != "" {
				t.Fatal("Decide is not deterministic")
			}
			if diff := cmp.Diff(tc.want, d.InsideLocalPrefs()); diff != "" {
				t.Errorf("InsideLocalPrefs (-want +got):\n%s\n%s", diff, summary(d))
			}
		})
	}
}

// TestLoopAppliesInsideLocalPrefs: the loop hands each pass's inside
// preferences to the speaker, and a health change reaches it.
func TestLoopAppliesInsideLocalPrefs(t *testing.T) {
	cfg := loopConfig(t)
	cfg.Uplinks[0].BGP.Import = config.ImportFull
	cfg.IBGP.Advertise = config.AdvertiseFull
	r := startLoop(t, cfg)
	inside := func() map[string]uint32 {
		r.sp.mu.Lock()
		defer r.sp.mu.Unlock()
		return maps.Clone(r.sp.inside)
	}
	waitFor(t, "isp-a's routes to the core at 200", func() (bool, string) {
		got := inside()
		return cmp.Equal(got, map[string]uint32{"isp-a": 200}), fmt.Sprint(got)
	})
	r.h.set("isp-a", health.VerdictDegraded)
	waitFor(t, "isp-a's routes demoted to 100", func() (bool, string) {
		got := inside()
		return cmp.Equal(got, map[string]uint32{"isp-a": 100}), fmt.Sprint(got)
	})
	r.h.set("isp-a", health.VerdictDown)
	waitFor(t, "isp-a's routes withdrawn from the core", func() (bool, string) {
		got := inside()
		return got != nil && len(got) == 0, fmt.Sprint(got)
	})
}

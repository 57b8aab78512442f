package controller

import (
	"encoding/json"
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

// TestRestoreKeepsInsideLocalPref: in ECMP mode a degraded uplink carries
// no egress but keeps its routes at the core at local_pref_degraded. The
// saved decision keeps that preference, so a restart restores it instead
// of computing 0 (withdrawn) from the restored egress; a file written
// before it was kept restores as before (computed), and a value the
// configuration's ladder no longer has is computed too.
func TestRestoreKeepsInsideLocalPref(t *testing.T) {
	cfg := testConfig(t)
	cfg.Uplinks[0].BGP.Import = config.ImportFull
	cfg.Uplinks[1].BGP.Import = config.ImportFull
	cfg.IBGP.Advertise = config.AdvertiseFull
	cfg.Egress.Mode = config.EgressECMP
	cfg.Controller.StateDir = t.TempDir()

	obs := obsAllUp(t0.Add(time.Minute))
	obs.StartupDone = true
	setHealth(&obs, "isp-a", health.VerdictDegraded)
	before := Decide(cfg, obs)
	want := map[string]uint32{"isp-a": 100, "isp-b": 200}
	if diff := cmp.Diff(want, before.InsideLocalPrefs()); diff != "" {
		t.Fatalf("before the restart (-want +got):\n%s\n%s", diff, summary(before))
	}
	data, err := encodeDecision(before)
	if err != nil {
		t.Fatal(err)
	}

	// The restart: no verdict yet, no session yet, inside the startup wait.
	restart := func(t *testing.T, file []byte) Desired {
		t.Helper()
		if err := writeState(cfg.Controller.StateDir, decisionFile, file); err != nil {
			t.Fatal(err)
		}
		restored, err := loadDecision(cfg.Controller.StateDir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		o := Observed{Now: t0.Add(time.Second), Started: t0, Restored: restored, Uplinks: map[string]UplinkObservation{
			"isp-a": {Probed: true, Sessions: 2}, "isp-b": {Probed: true, Sessions: 2}, "isp-c": {Sessions: 1},
		}}
		d := Decide(cfg, o)
		if len(d.Restoring) != 3 {
			t.Fatalf("restoring %v; want all three uplinks\n%s", d.Restoring, summary(d))
		}
		return d
	}
	t.Run("saved", func(t *testing.T) {
		if diff := cmp.Diff(want, restart(t, data).InsideLocalPrefs()); diff != "" {
			t.Errorf("restored (-want +got):\n%s", diff)
		}
	})
	t.Run("old file", func(t *testing.T) {
		var file map[string]map[string]map[string]any
		if err := json.Unmarshal(data, &file); err != nil {
			t.Fatal(err)
		}
		for _, u := range file["uplinks"] {
			if _, ok := u["inside_local_pref"]; !ok {
				t.Fatalf("no inside_local_pref to strip in\n%s", data)
			}
			delete(u, "inside_local_pref")
		}
		old, err := json.Marshal(file)
		if err != nil {
			t.Fatal(err)
		}
		// As before the field existed: computed from the restored egress,
		// which ECMP had taken from the degraded isp-a.
		if diff := cmp.Diff(map[string]uint32{"isp-b": 200}, restart(t, old).InsideLocalPrefs()); diff != "" {
			t.Errorf("restored from an old file (-want +got):\n%s", diff)
		}
	})
	t.Run("off the ladder", func(t *testing.T) {
		lp := uint32(150)
		kept := restoredFor(cfg, map[string]Restored{"isp-a": {Egress: true, EgressTier: TierUp, InsideLocalPref: &lp}})
		if got := kept["isp-a"].InsideLocalPref; got != nil {
			t.Errorf("restoredFor kept inside preference %d, which local_pref_up %d / degraded %d do not have", *got, cfg.IBGP.LocalPrefUp, cfg.IBGP.LocalPrefDegraded)
		}
	})
}

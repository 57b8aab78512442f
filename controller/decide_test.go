package controller

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/routing"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testConfig is a three-uplink site: isp-a and isp-b probed, isp-c not,
// isp-b keeping a maximum-prepend path when down.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test", []byte(`
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: [2001:db8:face::/48, 198.51.100.0/24]}
controller: {startup_wait: 30s, hold_down: 10s, hold_down_max: 80s, drain_grace: 60s}
uplinks:
  - name: isp-a
    interface: eth-a
    bgp: {peer_asn: 64501, neighbor: "2001:db8:1000:1::1", neighbor_ipv4: 198.18.1.1, communities: ["64501:100"]}
    degraded: {prepend: 2, communities: ["64501:70"], med: 50}
    health: {targets: ["icmp://2001:db8:9000:1::10"]}
  - name: isp-b
    interface: eth-b
    bgp: {peer_asn: 64502, neighbor: "2001:db8:2000:1::1", neighbor_ipv4: 198.18.2.1, prepend: 1}
    down_action: prepend
    health: {targets: ["icmp://2001:db8:9000:1::10"]}
  - name: isp-c
    interface: eth-c
    bgp: {peer_asn: 64503, neighbor: "2001:db8:3000:1::1"}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func obsAllUp(now time.Time) Observed {
	return Observed{
		Now: now, Started: t0,
		Uplinks: map[string]UplinkObservation{
			"isp-a": {Probed: true, Health: health.VerdictUp, HealthReason: "3 of 3 up", Sessions: 2, Established: 2},
			"isp-b": {Probed: true, Health: health.VerdictUp, HealthReason: "3 of 3 up", Sessions: 2, Established: 2},
			"isp-c": {Sessions: 1, Established: 1},
		},
	}
}

// summary renders the parts of a decision the tables compare.
func summary(d Desired) string {
	var parts []string
	for _, u := range d.Uplinks {
		ann := "withdrawn"
		if len(u.Announcements) > 0 {
			a := u.Announcements[0]
			ann = fmt.Sprintf("prepend=%d comms=%v", a.Prepend, a.Communities)
			if a.MED != nil {
				ann += fmt.Sprintf(" med=%d", *a.MED)
			}
			if a.GracefulShutdown {
				ann += " gshut"
			}
		}
		eg := "-"
		if u.Egress {
			eg = fmt.Sprint(u.Metric)
		}
		parts = append(parts, fmt.Sprintf("%s:%s[%s egress=%s]", u.Uplink, u.State, ann, eg))
	}
	s := strings.Join(parts, " ")
	if d.FailStatic {
		s += " FAIL-STATIC"
	}
	if d.Waiting {
		s += " WAITING"
	}
	return s + fmt.Sprintf(" lp=%d", d.DefaultLocalPref)
}

func TestLadder(t *testing.T) {
	cfg := testConfig(t)
	later := t0.Add(time.Minute)
	tests := []struct {
		name   string
		mutate func(o *Observed)
		want   string
	}{
		{"all up", func(o *Observed) {},
			"isp-a:up[prepend=0 comms=[64501:100] egress=100] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"a degraded: prepend, community, MED, higher metric", func(o *Observed) { setHealth(o, "isp-a", health.VerdictDegraded) },
			"isp-a:degraded[prepend=2 comms=[64501:100 64501:70] med=50 egress=1100] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"a down: withdrawn", func(o *Observed) { setHealth(o, "isp-a", health.VerdictDown) },
			"isp-a:down[withdrawn egress=-] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"b down with down_action prepend: max prepend", func(o *Observed) { setHealth(o, "isp-b", health.VerdictDown) },
			"isp-a:up[prepend=0 comms=[64501:100] egress=100] isp-b:down[prepend=10 comms=[] egress=-] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"carrier loss: down at once", func(o *Observed) { u := o.Uplinks["isp-a"]; u.CarrierDown = true; o.Uplinks["isp-a"] = u },
			"isp-a:down[withdrawn egress=-] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"session loss: down although probes are up", func(o *Observed) { u := o.Uplinks["isp-a"]; u.Established = 0; o.Uplinks["isp-a"] = u },
			"isp-a:down[withdrawn egress=-] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"unprobed uplink follows its session", func(o *Observed) { u := o.Uplinks["isp-c"]; u.Established = 0; o.Uplinks["isp-c"] = u },
			"isp-a:up[prepend=0 comms=[64501:100] egress=100] isp-b:up[prepend=1 comms=[] egress=110] isp-c:down[withdrawn egress=-] lp=200"},
		{"drain: graceful shutdown within grace", func(o *Observed) {
			o.Overrides = map[string]Override{"isp-a": {Drain: true, Reason: "maintenance", Who: "noc", Since: later.Add(-30 * time.Second)}}
		}, "isp-a:drained[prepend=0 comms=[64501:100] gshut egress=2100] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"drain: withdrawn after grace", func(o *Observed) {
			o.Overrides = map[string]Override{"isp-a": {Drain: true, Since: later.Add(-61 * time.Second)}}
		}, "isp-a:drained[withdrawn egress=-] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"expired drain is ignored", func(o *Observed) {
			o.Overrides = map[string]Override{"isp-a": {Drain: true, Since: t0, Expires: later.Add(-time.Second)}}
		}, "isp-a:up[prepend=0 comms=[64501:100] egress=100] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"force down", func(o *Observed) { o.Overrides = map[string]Override{"isp-c": {ForceDown: true, Since: t0}} },
			"isp-a:up[prepend=0 comms=[64501:100] egress=100] isp-b:up[prepend=1 comms=[] egress=110] isp-c:forced-down[withdrawn egress=-] lp=200"},
		{"operator prepend", func(o *Observed) { o.Overrides = map[string]Override{"isp-a": {ExtraPrepend: 3, Since: t0}} },
			"isp-a:up[prepend=3 comms=[64501:100] egress=100] isp-b:up[prepend=1 comms=[] egress=110] isp-c:up[prepend=0 comms=[] egress=120] lp=200"},
		{"only degraded left: internal LOCAL_PREF degraded", func(o *Observed) {
			setHealth(o, "isp-a", health.VerdictDegraded)
			setHealth(o, "isp-b", health.VerdictDown)
			u := o.Uplinks["isp-c"]
			u.Established = 0
			o.Uplinks["isp-c"] = u
		}, "isp-a:degraded[prepend=2 comms=[64501:100 64501:70] med=50 egress=1100] isp-b:down[prepend=10 comms=[] egress=-] isp-c:down[withdrawn egress=-] lp=100"},
		{"probes all fail, sessions up: fail-static", func(o *Observed) {
			setHealth(o, "isp-a", health.VerdictDown)
			setHealth(o, "isp-b", health.VerdictDown)
			u := o.Uplinks["isp-c"]
			u.Established = 0
			o.Uplinks["isp-c"] = u
			cfg.Uplinks[1].DownAction = config.DownWithdraw
		}, "isp-a:down[prepend=0 comms=[64501:100] egress=2100] isp-b:down[prepend=1 comms=[] egress=2110] isp-c:down[withdrawn egress=-] FAIL-STATIC lp=100"},
		{"no session anywhere: nothing to hold", func(o *Observed) {
			for n, u := range o.Uplinks {
				u.Established = 0
				o.Uplinks[n] = u
			}
			cfg.Uplinks[1].DownAction = config.DownWithdraw
		}, "isp-a:down[withdrawn egress=-] isp-b:down[withdrawn egress=-] isp-c:down[withdrawn egress=-] lp=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg = testConfig(t)
			o := obsAllUp(later)
			tt.mutate(&o)
			got := Decide(cfg, o)
			if d := cmp.Diff(tt.want, summary(got)); d != "" {
				t.Errorf("(-want +got):\n%s\nreasons: %v", d, reasons(got))
			}
			// Decide is pure: the same input gives the same output.
			if again := Decide(cfg, o); summary(again) != summary(got) {
				t.Errorf("second Decide differs: %s", summary(again))
			}
		})
	}
}

func setHealth(o *Observed, name string, v health.Verdict) {
	u := o.Uplinks[name]
	u.Health, u.HealthReason = v, "probes say "+v.String()
	o.Uplinks[name] = u
}

func reasons(d Desired) []string {
	var out []string
	for _, u := range d.Uplinks {
		out = append(out, u.Uplink+": "+u.Reason)
	}
	return out
}

func TestStartupWait(t *testing.T) {
	cfg := testConfig(t)
	o := obsAllUp(t0.Add(5 * time.Second))
	setHealth(&o, "isp-b", health.VerdictUnknown)
	d := Decide(cfg, o)
	if !d.Waiting || len(d.Announcements()) != 0 || !d.NextWake.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("before every verdict: %s next wake %v; want waiting, nothing announced, wake at the end of the wait", summary(d), d.NextWake)
	}
	// The wait is bounded: after 30s, announce what is known.
	o.Now = t0.Add(31 * time.Second)
	o.Memory = d.Memory
	d = Decide(cfg, o)
	if d.Waiting || len(d.Announcements()["isp-a"]) == 0 {
		t.Fatalf("after the wait: %s; want isp-a announced", summary(d))
	}
	// Every verdict in: no waiting at all.
	o = obsAllUp(t0.Add(time.Second))
	d = Decide(cfg, o)
	if d.Waiting || !d.StartupDone {
		t.Fatalf("all verdicts known: %s, startup done %v; want no wait, done", summary(d), d.StartupDone)
	}
	// Once over, the wait never starts again: an uplink whose probes were
	// just added by a reload (verdict unknown) within the startup window
	// must not withdraw the others.
	o.Now, o.Memory, o.StartupDone = t0.Add(2*time.Second), d.Memory, d.StartupDone
	setHealth(&o, "isp-b", health.VerdictUnknown)
	d = Decide(cfg, o)
	if d.Waiting || len(d.Announcements()["isp-a"]) == 0 || !d.StartupDone {
		t.Fatalf("a verdict unknown again after the wait ended: %s; want no wait, isp-a announced", summary(d))
	}
}

// TestHoldDownBackoff: a flapping uplink is held down for hold_down, then
// twice that, then four times, capped at hold_down_max, and forgiven after
// a quiet hold_down_max.
func TestHoldDownBackoff(t *testing.T) {
	f := &flapper{cfg: testConfig(t), now: t0.Add(time.Minute)}
	stateA := func(d Desired) State { x, _ := d.Decision("isp-a"); return x.State }
	f.step(health.VerdictUp)
	for i, hold := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 80 * time.Second} {
		if s := stateA(f.step(health.VerdictDown)); s != StateDown {
			t.Fatalf("flap %d: worsening not immediate: %s", i, s)
		}
		f.now = f.now.Add(hold - time.Second)
		d := f.step(health.VerdictUp)
		if s := stateA(d); s != StateDown {
			t.Fatalf("flap %d: recovered after %s, before the %s hold-down", i, hold-time.Second, hold)
		}
		if !d.NextWake.Equal(f.now.Add(time.Second)) {
			t.Fatalf("flap %d: next wake %v; want the end of the hold-down %v", i, d.NextWake, f.now.Add(time.Second))
		}
		f.now = f.now.Add(time.Second)
		if s := stateA(f.step(health.VerdictUp)); s != StateUp {
			t.Fatalf("flap %d: still %s at the end of the %s hold-down", i, s, hold)
		}
		f.now = f.now.Add(time.Second)
	}
	// Quiet for hold_down_max: the backoff starts over.
	f.now = f.now.Add(81 * time.Second)
	f.step(health.VerdictDown)
	f.now = f.now.Add(10 * time.Second)
	if s := stateA(f.step(health.VerdictUp)); s != StateUp {
		t.Fatalf("after a quiet period the hold-down should be back to 10s; state %s", s)
	}
}

// flapper runs Decide for one verdict of isp-a at a time (the other
// uplinks up), carrying the memory from one pass to the next as the loop
// does. now is the next pass's clock; the tests move it.
type flapper struct {
	cfg *config.Config
	now time.Time
	mem map[string]Memory
}

func (f *flapper) step(v health.Verdict) Desired {
	o := obsAllUp(f.now)
	setHealth(&o, "isp-a", v)
	o.Memory = f.mem
	d := Decide(f.cfg, o)
	f.mem = d.Memory
	return d
}

// TestGoldenThreeUplinks pins a full decision for three uplinks in mixed
// states, reasons included. Refresh with -update.
func TestGoldenThreeUplinks(t *testing.T) {
	cfg := testConfig(t)
	o := obsAllUp(t0.Add(time.Minute))
	setHealth(&o, "isp-a", health.VerdictDegraded)
	setHealth(&o, "isp-b", health.VerdictDown)
	o.Overrides = map[string]Override{"isp-c": {Drain: true, Reason: "fibre work", Who: "alice", Since: t0.Add(50 * time.Second), Expires: t0.Add(2 * time.Hour)}}
	d := Decide(cfg, o)
	got, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/three-uplinks.golden.json"
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("decision differs from %s (-want +got):\n%s", golden, diff)
	}
}

// TestECMPUsesEveryHealthyUplink: with egress.mode ecmp and an
// egress.metric close below a multiple of 1000, three healthy uplinks all
// carry egress. The tier was once recovered as metric/1000, which put
// isp-a (995) and isp-b (1005) in different tiers and kept only isp-a.
func TestECMPUsesEveryHealthyUplink(t *testing.T) {
	cfg := testConfig(t)
	cfg.Egress.Mode = config.EgressECMP
	cfg.Egress.Metric = 995
	d := Decide(cfg, obsAllUp(t0.Add(time.Minute)))
	var got []string
	for _, p := range EgressPaths(cfg, d) {
		got = append(got, p.Uplink)
	}
	if want := []string{"isp-a", "isp-b", "isp-c"}; !slices.Equal(got, want) {
		t.Fatalf("ECMP egress via %v, want %v (%s)", got, want, summary(d))
	}
	// A degraded uplink leaves the ECMP set while better ones remain.
	o := obsAllUp(t0.Add(time.Minute))
	setHealth(&o, "isp-b", health.VerdictDegraded)
	d = Decide(cfg, o)
	got = nil
	for _, p := range EgressPaths(cfg, d) {
		got = append(got, p.Uplink)
	}
	if want := []string{"isp-a", "isp-c"}; !slices.Equal(got, want) {
		t.Fatalf("ECMP egress with isp-b degraded via %v, want %v", got, want)
	}
}

// TestRandomSequences drives random observation sequences through Decide
// and checks the safety invariants after every step.
func TestRandomSequences(t *testing.T) {
	verdicts := []health.Verdict{health.VerdictUp, health.VerdictDegraded, health.VerdictDown, health.VerdictUnknown}
	for seed := uint64(0); seed < 50; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		cfg := testConfig(t)
		if rng.IntN(2) == 0 {
			cfg.Uplinks[1].DownAction = config.DownWithdraw
		}
		if rng.IntN(2) == 0 {
			cfg.Egress.Mode = config.EgressECMP
		}
		// Metrics just below a multiple of 1000 among them: a tier read
		// back from metric/1000 splits one tier there.
		cfg.Egress.Metric = []int{100, 995, 1985, 1 + rng.IntN(5000)}[rng.IntN(4)]
		// Half the runs start from a restored decision.
		restored := map[string]Restored{}
		if rng.IntN(2) == 0 {
			for _, u := range cfg.Uplinks {
				if rng.IntN(3) > 0 {
					restored[u.Name] = Restored{Announcements: announce(cfg, u, uint8(rng.IntN(4)), nil, nil, false), Egress: rng.IntN(2) == 0, EgressTier: rng.IntN(3)}
				}
			}
		}
		// A quarter of the runs are decommissioned at a random step.
		decomStep, decomSince := -1, time.Time{}
		if rng.IntN(4) == 0 {
			decomStep = rng.IntN(300)
		}
		now := t0
		var mem map[string]Memory
		carrierWas := map[string]bool{}
		overrides := map[string]Override{}
		for step := 0; step < 300; step++ {
			now = now.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
			o := Observed{Now: now, Started: t0, Uplinks: map[string]UplinkObservation{}, Memory: mem, Overrides: overrides, Restored: restored}
			for _, u := range cfg.Uplinks {
				obs := UplinkObservation{Probed: u.Health != nil, Health: verdicts[rng.IntN(4)], Sessions: 2, Established: rng.IntN(3), CarrierDown: rng.IntN(10) == 0}
				o.Uplinks[u.Name] = obs
			}
			if rng.IntN(20) == 0 {
				name := cfg.Uplinks[rng.IntN(3)].Name
				overrides[name] = Override{Drain: rng.IntN(2) == 0, ForceDown: rng.IntN(3) == 0, Since: now, Expires: now.Add(time.Duration(rng.IntN(120)) * time.Second)}
			}
			if step == decomStep {
				decomSince = now
			}
			o.DecommissionSince = decomSince
			d := Decide(cfg, o)
			mem = d.Memory
			where := fmt.Sprintf("seed %d step %d", seed, step)
			if !decomSince.IsZero() {
				checkDecommission(t, cfg, o, d, where)
				continue
			}
			checkInvariants(t, cfg, o, d, where)
			// Sessions are reset exactly when the carrier goes away.
			var wantReset []string
			for _, u := range cfg.Uplinks {
				if o.Uplinks[u.Name].CarrierDown && !carrierWas[u.Name] {
					wantReset = append(wantReset, u.Name)
				}
				carrierWas[u.Name] = o.Uplinks[u.Name].CarrierDown
			}
			if !slices.Equal(d.ResetSessions, wantReset) {
				t.Fatalf("%s: sessions reset %v, want %v", where, d.ResetSessions, wantReset)
			}
			// A restored decision stands only within the startup wait,
			// never for a forced-down uplink or one without carrier.
			for _, name := range d.Restoring {
				dec, _ := d.Decision(name)
				if !now.Before(t0.Add(cfg.Controller.StartupWait)) || dec.State == StateForcedDown || o.Uplinks[name].CarrierDown {
					t.Fatalf("%s: %s restored at %s in state %s (carrier down %v)", where, name, now.Sub(t0), dec.State, o.Uplinks[name].CarrierDown)
				}
			}
		}
	}
}

func checkInvariants(t *testing.T, cfg *config.Config, o Observed, d Desired, where string) {
	t.Helper()
	anyEstablished := false
	for _, u := range o.Uplinks {
		anyEstablished = anyEstablished || u.Established > 0
	}
	if !d.Waiting && anyEstablished && len(d.Announcements()) == 0 {
		t.Fatalf("%s: a session is established but nothing is announced: %s", where, summary(d))
	}
	for _, dec := range d.Uplinks {
		u, _ := uplinkConfig(cfg, dec.Uplink)
		if len(dec.Announcements) == 0 || d.FailStatic || slices.Contains(d.Restoring, dec.Uplink) {
			continue
		}
		switch {
		case dec.State == StateForcedDown:
			t.Fatalf("%s: announcing to forced-down %s", where, u.Name)
		case dec.State == StateDown && u.DownAction == config.DownWithdraw:
			t.Fatalf("%s: announcing to down %s", where, u.Name)
		case dec.State == StateDrained && !dec.Announcements[0].GracefulShutdown:
			t.Fatalf("%s: announcing to drained %s without graceful shutdown", where, u.Name)
		}
		for _, a := range dec.Announcements {
			if a.Prepend > config.MaxPrepend {
				t.Fatalf("%s: prepend %d above the cap", where, a.Prepend)
			}
		}
	}
	for _, dec := range d.Uplinks {
		if slices.Contains(d.Restoring, dec.Uplink) {
			continue
		}
		if dec.Egress && !d.FailStatic && (dec.State == StateForcedDown || dec.State == StateDown) {
			t.Fatalf("%s: egress via %s %s", where, dec.State, dec.Uplink)
		}
	}
	checkEgressTiers(t, cfg, d, where)
}

// checkEgressTiers checks that each egress tier says what the uplink's
// state is (up first, degraded next, draining or fail-static last), that
// ECMP uses exactly the best tier present, and that failover metrics
// order the tiers whatever egress.metric is.
func checkEgressTiers(t *testing.T, cfg *config.Config, d Desired, where string) {
	t.Helper()
	best := TierLast + 1
	for _, dec := range d.Uplinks {
		if !dec.Egress {
			continue
		}
		best = min(best, dec.EgressTier)
		if slices.Contains(d.Restoring, dec.Uplink) {
			continue // the previous run's tier
		}
		want := TierLast
		switch {
		case dec.State == StateUp && !strings.Contains(dec.Reason, "fail-static"):
			want = TierUp
		case dec.State == StateDegraded && !strings.Contains(dec.Reason, "fail-static"):
			want = TierDegraded
		}
		if dec.EgressTier != want {
			t.Fatalf("%s: %s is %s with egress tier %d, want %d", where, dec.Uplink, dec.State, dec.EgressTier, want)
		}
	}
	paths := EgressPaths(cfg, d)
	for _, p := range paths {
		dec, _ := d.Decision(p.Uplink)
		if cfg.Egress.Mode == config.EgressECMP && dec.EgressTier != best {
			t.Fatalf("%s: ECMP egress via %s in tier %d while tier %d has uplinks", where, p.Uplink, dec.EgressTier, best)
		}
		for _, q := range paths {
			other, _ := d.Decision(q.Uplink)
			if dec.EgressTier < other.EgressTier && p.Metric >= q.Metric {
				t.Fatalf("%s: %s (tier %d, metric %d) does not come before %s (tier %d, metric %d)", where, p.Uplink, dec.EgressTier, p.Metric, q.Uplink, other.EgressTier, q.Metric)
			}
		}
	}
	if cfg.Egress.Mode == config.EgressECMP && !d.Waiting && !d.FailStatic && len(d.Restoring) == 0 {
		// Every up uplink is in the set (the bug a metric-derived tier
		// had: an egress.metric near a multiple of 1000 split them).
		for _, dec := range d.Uplinks {
			if dec.State != StateUp {
				continue
			}
			if !slices.ContainsFunc(paths, func(p routing.EgressPath) bool { return p.Uplink == dec.Uplink }) {
				t.Fatalf("%s: %s is up but not in the ECMP set: %s", where, dec.Uplink, summary(d))
			}
		}
	}
}

// TestDecommission: within drain_grace every announcing uplink carries
// GRACEFUL_SHUTDOWN and egress stays; after it nothing is announced or
// routed, although sessions are established (no fail-static).
func TestDecommission(t *testing.T) {
	cfg := testConfig(t)
	o := obsAllUp(t0.Add(time.Minute))
	o.DecommissionSince = t0.Add(50 * time.Second)
	d := Decide(cfg, o)
	if d.Decommissioned || len(d.Announcements()) != 3 || !d.NextWake.Equal(t0.Add(110*time.Second)) {
		t.Fatalf("draining: %s, next wake %v; want every uplink announced until %v", summary(d), d.NextWake, t0.Add(110*time.Second))
	}
	for _, u := range d.Uplinks {
		if !u.Announcements[0].GracefulShutdown || !u.Egress {
			t.Fatalf("draining: %s", summary(d))
		}
	}
	o.Now, o.Memory = t0.Add(111*time.Second), d.Memory
	d = Decide(cfg, o)
	if !d.Decommissioned || len(d.Announcements()) != 0 || len(EgressPaths(cfg, d)) != 0 || d.DefaultLocalPref != 0 || d.FailStatic {
		t.Fatalf("after the grace: %s; want nothing announced or routed, no fail-static", summary(d))
	}
}

// checkDecommission: within drain_grace of a decommission every
// announcement carries GRACEFUL_SHUTDOWN; after it nothing is announced or
// routed, whatever the sessions.
func checkDecommission(t *testing.T, cfg *config.Config, o Observed, d Desired, where string) {
	t.Helper()
	over := !o.Now.Before(o.DecommissionSince.Add(cfg.Controller.DrainGrace))
	if d.Decommissioned != over || d.FailStatic || d.Waiting {
		t.Fatalf("%s: decommissioned %v (grace over %v), fail-static %v, waiting %v", where, d.Decommissioned, over, d.FailStatic, d.Waiting)
	}
	if over && (len(d.Announcements()) != 0 || len(EgressPaths(cfg, d)) != 0 || d.DefaultLocalPref != 0) {
		t.Fatalf("%s: after the decommission's grace: %s", where, summary(d))
	}
	for _, anns := range d.Announcements() {
		for _, a := range anns {
			if !a.GracefulShutdown {
				t.Fatalf("%s: announcement without GRACEFUL_SHUTDOWN while decommissioning: %s", where, summary(d))
			}
		}
	}
}

// TestFirstAnnouncementBeforeSessions: the speaker opens its sessions only
// with the first announcements, so at the first decision after a start no
// session is established yet. That must not count as a dead ISP: healthy
// uplinks announce (the End-of-RIB that follows would otherwise flush what
// the ISPs kept from before a restart). A session still not up when
// startup_wait has passed does count.
func TestFirstAnnouncementBeforeSessions(t *testing.T) {
	cfg := testConfig(t)
	obs := obsAllUp(t0.Add(3 * time.Second))
	for name, o := range obs.Uplinks {
		o.Established = 0
		obs.Uplinks[name] = o
	}
	d := Decide(cfg, obs)
	if d.Waiting {
		t.Fatal("waiting although every probed uplink has a verdict")
	}
	for _, u := range d.Uplinks {
		if u.State != StateUp || len(u.Announcements) == 0 || !u.Egress {
			t.Errorf("%s before its session ever came up: %s %q, %d announcements, egress %v; want up, announcing, egress", u.Uplink, u.State, u.Reason, len(u.Announcements), u.Egress)
		}
	}
	if want := t0.Add(30 * time.Second); !d.NextWake.Equal(want) {
		t.Errorf("next wake %v; want the end of startup_wait %v, when pending sessions start to count", d.NextWake, want)
	}

	// Still no session at the end of startup_wait: down, withdrawn (isp-b
	// keeps its maximum-prepend path by down_action).
	later := obs
	later.Now, later.StartupDone, later.Memory = t0.Add(31*time.Second), true, d.Memory
	d2 := Decide(cfg, later)
	for _, u := range d2.Uplinks {
		if u.State != StateDown || u.Egress || !strings.Contains(u.Reason, "no BGP session established") {
			t.Errorf("%s with no session after startup_wait: %s %q egress %v; want down for its session", u.Uplink, u.State, u.Reason, u.Egress)
		}
	}

	// A session that was up once and dropped counts at once, even early.
	seen := obsAllUp(t0.Add(2 * time.Second))
	d3 := Decide(cfg, seen)
	drop := seen
	drop.Now, drop.StartupDone, drop.Memory = t0.Add(4*time.Second), true, d3.Memory
	a := drop.Uplinks["isp-a"]
	a.Established = 0
	drop.Uplinks["isp-a"] = a
	d4 := Decide(cfg, drop)
	if u, _ := d4.Decision("isp-a"); u.State != StateDown || len(u.Announcements) != 0 {
		t.Errorf("isp-a after its established session dropped: %s %q, %d announcements; want down, withdrawn", u.State, u.Reason, len(u.Announcements))
	}
}

// TestPrependsDoNotWrap: the configured, degraded and operator prepends add
// up to at most config.MaxPrepend. They were added in a uint8, so parts
// that do not come through the API's check (a hand-edited overrides file)
// could wrap to a shorter path than any of them.
func TestPrependsDoNotWrap(t *testing.T) {
	cfg := testConfig(t)
	obs := obsAllUp(t0.Add(time.Minute))
	obs.StartupDone = true
	setHealth(&obs, "isp-a", health.VerdictDegraded)
	obs.Overrides = map[string]Override{"isp-a": {ExtraPrepend: 255, Since: t0}} // 2 degraded + 255 wrapped to 1
	d := Decide(cfg, obs)
	for _, u := range d.Uplinks {
		if u.Uplink != "isp-a" {
			continue
		}
		if len(u.Announcements) == 0 {
			t.Fatalf("isp-a degraded with an operator prepend announces nothing\n%s", summary(d))
		}
		for _, a := range u.Announcements {
			if a.Prepend != config.MaxPrepend {
				t.Errorf("%s to isp-a: prepend %d; want the cap %d", a.Prefix, a.Prepend, config.MaxPrepend)
			}
		}
	}
}

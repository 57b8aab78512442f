package health

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// reconfRig is a Monitor on a fake clock whose fake probers are recorded
// per uplink, so a test can tell old generations' probers from new ones.
type reconfRig struct {
	t     *testing.T
	m     *Monitor
	clock *fakeClock
	fail  map[string]*atomic.Bool // by uplink name
	// gate holds the probes of the uplinks it names until closed; set it
	// before Prepare builds their probers.
	gate map[string]chan struct{}

	mu      sync.Mutex
	probers map[string][]*fakeProber // by uplink name, every one ever built
}

func newReconfRig(t *testing.T, uplinks []Uplink) *reconfRig {
	t.Helper()
	r := &reconfRig{t: t, clock: &fakeClock{now: time.Unix(1000, 0)}, fail: map[string]*atomic.Bool{}, gate: map[string]chan struct{}{}, probers: map[string][]*fakeProber{}}
	for _, n := range []string{"isp-a", "isp-b", "isp-c"} {
		r.fail[n] = new(atomic.Bool)
	}
	r.m = newTestMonitor(t, r.clock, func(u Uplink, tg Target) (Prober, error) {
		if strings.Contains(tg.String(), "::bad") {
			return nil, errors.New("cannot build this prober")
		}
		p := &fakeProber{fail: r.fail[u.Name], gate: r.gate[u.Name]}
		r.mu.Lock()
		r.probers[u.Name] = append(r.probers[u.Name], p)
		r.mu.Unlock()
		return p, nil
	}, uplinks...)
	return r
}

func (r *reconfRig) built(uplink string) []*fakeProber {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.probers[uplink])
}

// round advances the clock one interval and waits until every target of
// every uplink has been probed at least once more.
func (r *reconfRig) round() {
	r.t.Helper()
	before := map[string]uint64{}
	for _, u := range r.m.Snapshot().Uplinks {
		for _, tg := range u.Targets {
			before[u.Name+" "+tg.Target] = tg.Probes
		}
	}
	r.clock.Advance(time.Second)
	eventually(r.t, "one more probe per target", func() bool {
		for _, u := range r.m.Snapshot().Uplinks {
			for _, tg := range u.Targets {
				if tg.Probes <= before[u.Name+" "+tg.Target] {
					return false
				}
			}
		}
		return true
	})
}

func (r *reconfRig) verdicts() string {
	var s []string
	for _, u := range r.m.Snapshot().Uplinks {
		s = append(s, u.Name+"="+u.Verdict.String())
	}
	return strings.Join(s, " ")
}

func rcUplink(name, dev string, targets int) Uplink {
	return Uplink{Name: name, Device: dev, Health: testConfig(targets, func(c *Config) { c.Rise, c.Fall = 2, 2 })}
}

// TestMonitorReconfigure: a committed reconfiguration keeps the verdict and
// windows of an unchanged uplink, restarts a changed one (verdict unknown,
// fresh windows), adds and removes uplinks, and replaces every prober; Discard,
// a stale reconfiguration and a bad one change nothing.
func TestMonitorReconfigure(t *testing.T) {
	defer goleak.VerifyNone(t)
	rig := newReconfRig(t, []Uplink{rcUplink("isp-a", "eth-a", 2), rcUplink("isp-b", "eth-b", 2)})
	m := rig.m
	ctx, stop := startRun(m)
	defer stop()
	rig.round()
	rig.round()
	if got := rig.verdicts(); got != "isp-a=up isp-b=up" {
		t.Fatalf("before: %s", got)
	}
	aBefore, _ := m.Snapshot().Uplink("isp-a")
	gen1 := append(rig.built("isp-a"), rig.built("isp-b")...)

	// isp-a unchanged, isp-b gets a third target, isp-c is new.
	next := []Uplink{rcUplink("isp-c", "eth-c", 1), rcUplink("isp-a", "eth-a", 2), rcUplink("isp-b", "eth-b", 3)}
	rc, err := m.Prepare(next)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.Kept(), []string{"isp-a"}) {
		t.Errorf("Kept = %v, want [isp-a]", rc.Kept())
	}
	if got := rig.verdicts(); got != "isp-a=up isp-b=up" {
		t.Fatalf("Prepare changed the monitor: %s", got)
	}
	if err := rc.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rc.Commit(ctx); err == nil {
		t.Error("a second Commit succeeded")
	}
	for i, p := range gen1 {
		if !p.closed.Load() {
			t.Errorf("prober %d of the first configuration not closed after Commit", i)
		}
	}
	snap := m.Snapshot()
	// isp-b starts over: unknown until rise probes (the clock has not
	// moved, so it has at most one result per target).
	if got := rig.verdicts(); got != "isp-c=unknown isp-a=up isp-b=unknown" {
		t.Fatalf("after Commit: %s", got)
	}
	a, _ := snap.Uplink("isp-a")
	if !a.Since.Equal(aBefore.Since) || a.Samples < aBefore.Samples || a.Targets[0].Probes < aBefore.Targets[0].Probes {
		t.Errorf("isp-a did not carry over: before %+v, after %+v", aBefore, a)
	}
	b, _ := snap.Uplink("isp-b")
	// Fresh windows: at most the one probe per target that a new
	// generation sends as it starts (the clock has not moved).
	if len(b.Targets) != 3 || b.Samples > 3 || !b.Since.IsZero() {
		t.Errorf("isp-b after the change: %d targets, %d samples, since %v; want 3, at most 3, zero", len(b.Targets), b.Samples, b.Since)
	}

	rig.round()
	rig.round()
	if got := rig.verdicts(); got != "isp-c=up isp-a=up isp-b=up" {
		t.Fatalf("after two rounds on the new configuration: %s", got)
	}
	if a, _ := m.Snapshot().Uplink("isp-a"); !a.Since.Equal(aBefore.Since) {
		t.Errorf("isp-a's verdict restarted: since %v, was %v", a.Since, aBefore.Since)
	}

	// Discard: nothing changes, its probers are closed.
	nb := len(rig.built("isp-b"))
	rc, err = m.Prepare([]Uplink{rcUplink("isp-b", "eth-b", 1)})
	if err != nil {
		t.Fatal(err)
	}
	rc.Discard()
	if p := rig.built("isp-b")[nb]; !p.closed.Load() {
		t.Error("a discarded reconfiguration's prober is open")
	}
	if err := rc.Commit(ctx); err == nil {
		t.Error("Commit after Discard succeeded")
	}
	if got := rig.verdicts(); got != "isp-c=up isp-a=up isp-b=up" {
		t.Fatalf("after Discard: %s", got)
	}

	// Bad reconfigurations are refused whole.
	bad := rcUplink("isp-a", "eth-a", 2)
	bad.Health.Targets = append(bad.Health.Targets, Target{Kind: KindICMP, Address: mustAddr("2001:db8:9000:1::bad"), Interval: time.Second, Timeout: time.Second, Rise: 2, Fall: 2, Window: 20})
	if _, err := m.Prepare([]Uplink{rcUplink("isp-b", "eth-b", 1), bad}); err == nil || !strings.Contains(err.Error(), "targets[2]") {
		t.Errorf("prober that cannot be built: err = %v", err)
	}
	for _, p := range rig.built("isp-b")[nb+1:] {
		if !p.closed.Load() {
			t.Error("a refused reconfiguration left a prober open")
		}
	}
	if _, err := m.Prepare([]Uplink{rcUplink("isp-a", "eth-a", 1), rcUplink("isp-a", "eth-b", 1)}); err == nil {
		t.Error("duplicate names accepted")
	}

	// Stale: prepared against a configuration that was replaced since.
	r1, err := m.Prepare([]Uplink{rcUplink("isp-a", "eth-a", 2)})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := m.Prepare([]Uplink{rcUplink("isp-b", "eth-b", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Commit(ctx); !errors.Is(err, errStale) {
		t.Errorf("stale Commit: err = %v", err)
	}
	if got := rig.verdicts(); got != "isp-a=up" {
		t.Fatalf("after the stale Commit: %s", got)
	}
	rig.round() // still probing

	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	rc, err = m.Prepare([]Uplink{rcUplink("isp-b", "eth-b", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Commit(context.Background()); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Commit after Run ended: err = %v", err)
	}
	for name, ps := range rig.probers {
		for i, p := range ps {
			if !p.closed.Load() {
				t.Errorf("%s prober %d still open at the end", name, i)
			}
		}
	}
}

// TestMonitorStartsIdle: a Monitor built without uplinks runs idle until
// a reconfiguration committed before or during Run gives it some.
func TestMonitorStartsIdle(t *testing.T) {
	defer goleak.VerifyNone(t)
	rig := newReconfRig(t, nil)
	m := rig.m
	rc, err := m.Prepare([]Uplink{rcUplink("isp-a", "eth-a", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Commit(context.Background()); err != nil { // before Run
		t.Fatal(err)
	}
	ctx, stop := startRun(m)
	defer stop()
	rig.round()
	rig.round()
	if got := rig.verdicts(); got != "isp-a=up" {
		t.Fatalf("committed before Run: %s", got)
	}
	rc, err = m.Prepare(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rig.verdicts(); got != "" {
		t.Fatalf("no uplinks: %q", got)
	}
	select {
	case <-m.Changed():
	default:
		t.Error("no Changed signal after the uplinks changed")
	}
	// An uplink added while running starts unknown and is judged on its
	// own probes.
	rig.fail["isp-b"].Store(true)
	// Its first probe goes out at once: hold it, so that what is read just
	// after Commit is the state before any probe of its own.
	gate := make(chan struct{})
	rig.gate["isp-b"] = gate
	rc, err = m.Prepare([]Uplink{rcUplink("isp-b", "eth-b", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rig.verdicts(); got != "isp-b=unknown" {
		t.Fatalf("just added: %s", got)
	}
	close(gate)
	rig.round()
	rig.round()
	if got := rig.verdicts(); got != "isp-b=down" {
		t.Fatalf("added while running, failing: %s", got)
	}
}

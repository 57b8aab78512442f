package health

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var errTimeout = errors.New("timeout")

// sim drives an uplinkTracker with simulated time: each step gives every
// target one result (a fake prober's answer) and advances the clock by the
// interval. It records every verdict transition.
type sim struct {
	t     *testing.T
	u     *uplinkTracker
	now   time.Time
	step_ time.Duration
	trans []transition
}

type transition struct {
	at       time.Time
	from, to Verdict
	reason   string
}

// res is the answer of a fake prober for one step.
type res struct {
	ok  bool
	rtt time.Duration
}

var (
	ok   = res{ok: true, rtt: 5 * time.Millisecond}
	fail = res{}
)

func slow(d time.Duration) res { return res{ok: true, rtt: d} }

func testConfig(nTargets int, mod func(*Config)) Config {
	var c Config
	for i := range nTargets {
		c.Targets = append(c.Targets, Target{Kind: KindICMP, Address: mustAddr(fmt.Sprintf("2001:db8:9000:1::%x", i+1))})
	}
	if mod != nil {
		mod(&c)
	}
	c.ApplyDefaults(0)
	return c
}

func newSim(t *testing.T, c Config) *sim {
	t.Helper()
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("test config invalid: %v", errors.Join(errs...))
	}
	return &sim{t: t, u: newUplinkTracker("isp-a", "eth1", c), now: time.Unix(1000, 0), step_: c.Interval}
}

// step feeds one result per target (a single result is used for all).
func (s *sim) step(rs ...res) Verdict {
	s.t.Helper()
	if len(rs) == 1 {
		for len(rs) < len(s.u.targets) {
			rs = append(rs, rs[0])
		}
	}
	if len(rs) != len(s.u.targets) {
		s.t.Fatalf("step: %d results for %d targets", len(rs), len(s.u.targets))
	}
	for i, r := range rs {
		var err error
		if !r.ok {
			err = errTimeout
		}
		s.u.targets[i].observe(s.now, r.rtt, err, false)
		s.eval()
	}
	s.now = s.now.Add(s.step_)
	return s.u.verdict
}

func (s *sim) eval() {
	from := s.u.verdict
	if s.u.evaluate(s.now) {
		s.trans = append(s.trans, transition{s.now, from, s.u.verdict, s.u.reasonText()})
	}
}

// steps feeds the same results n times and returns the final verdict.
func (s *sim) steps(n int, rs ...res) Verdict {
	s.t.Helper()
	var v Verdict
	for range n {
		v = s.step(rs...)
	}
	return v
}

func TestRiseFall(t *testing.T) {
	c := testConfig(1, func(c *Config) { c.Rise, c.Fall = 3, 2 })
	s := newSim(t, c)
	tt := s.u.targets[0]
	seq := []struct {
		in   res
		want TargetState
	}{
		{ok, TargetUnknown}, {ok, TargetUnknown}, {ok, TargetUp}, // rise 3
		{fail, TargetUp}, {ok, TargetUp}, {fail, TargetUp}, {fail, TargetDown}, // fall 2, the run restarts on success
		{ok, TargetDown}, {ok, TargetDown}, {fail, TargetDown}, {ok, TargetDown}, {ok, TargetDown}, {ok, TargetUp},
	}
	for i, st := range seq {
		s.step(st.in)
		if tt.state != st.want {
			t.Fatalf("after result %d (ok=%v): target %v, want %v", i, st.in.ok, tt.state, st.want)
		}
	}
	// From unknown, failures go straight to down after fall.
	s2 := newSim(t, c)
	s2.step(fail)
	if got := s2.u.targets[0].state; got != TargetUnknown {
		t.Fatalf("after 1 failure: %v, want unknown", got)
	}
	s2.step(fail)
	if got := s2.u.targets[0].state; got != TargetDown {
		t.Fatalf("after 2 failures: %v, want down", got)
	}
	if s2.u.verdict != VerdictDown {
		t.Fatalf("single target down: verdict %v, want down", s2.u.verdict)
	}
}

func TestKOfN(t *testing.T) {
	// Rise = fall = 1 so each step sets the target states directly.
	cases := []struct {
		minUp int
		in    []res
		want  Verdict
	}{
		{0, []res{ok, ok, ok}, VerdictUp},
		{0, []res{ok, ok, fail}, VerdictUp}, // majority of 3 is 2
		{0, []res{ok, fail, fail}, VerdictDown},
		{0, []res{fail, fail, fail}, VerdictDown},
		{1, []res{ok, fail, fail}, VerdictUp},
		{1, []res{fail, fail, fail}, VerdictDown},
		{3, []res{ok, ok, fail}, VerdictDown},
		{3, []res{ok, ok, ok}, VerdictUp},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("min_up=%d/%v", tc.minUp, tc.in)
		t.Run(name, func(t *testing.T) {
			c := testConfig(3, func(c *Config) { c.MinUp, c.Rise, c.Fall = tc.minUp, 1, 1 })
			s := newSim(t, c)
			if got := s.step(tc.in...); got != tc.want {
				t.Fatalf("verdict %v (%s), want %v", got, s.u.reasonText(), tc.want)
			}
			if tc.want == VerdictDown {
				for i, r := range tc.in {
					name := s.u.targets[i].name
					if !r.ok && !strings.Contains(s.u.reasonText(), name) {
						t.Errorf("reason %q does not name failed target %s", s.u.reasonText(), name)
					}
				}
			}
		})
	}
}

func TestUnknownUntilDecidable(t *testing.T) {
	// 3 targets, need 2, rise 3, fall 3: one failing target cannot decide
	// down and one rising target cannot decide up.
	c := testConfig(3, func(c *Config) { c.MinUp = 2 })
	s := newSim(t, c)
	s.steps(2, ok, ok, fail)
	if s.u.verdict != VerdictUnknown {
		t.Fatalf("before rise: verdict %v, want unknown", s.u.verdict)
	}
	s.step(ok, ok, fail)
	if s.u.verdict != VerdictUp {
		t.Fatalf("after rise: verdict %v (%s), want up", s.u.verdict, s.u.reasonText())
	}
}

// lossPattern returns one result per step where every n-th fails.
func lossPattern(s *sim, steps, everyN int) {
	for i := range steps {
		if i%everyN == everyN-1 {
			s.step(fail)
		} else {
			s.step(ok)
		}
	}
}

func TestDegradedLossHysteresis(t *testing.T) {
	// One target, window 30 (so loss moves in steps of 3.3%), enter 10%,
	// leave 5%.
	c := testConfig(1, func(c *Config) { c.Fall, c.Window = 5, 30 })
	s := newSim(t, c)
	if v := s.steps(20, ok); v != VerdictUp {
		t.Fatalf("clean: %v", v)
	}
	lossPattern(s, 60, 5) // 20% loss
	if s.u.verdict != VerdictDegraded {
		t.Fatalf("20%% loss: verdict %v (%s), want degraded", s.u.verdict, s.u.reasonText())
	}
	if !strings.Contains(s.u.reasonText(), "loss 20.0%") {
		t.Errorf("reason %q does not give the loss", s.u.reasonText())
	}
	// 1 in 15 keeps exactly 2 failures in the window, 6.7%: below enter but
	// not below leave, so it stays degraded.
	lossPattern(s, 90, 15)
	if s.u.verdict != VerdictDegraded {
		t.Fatalf("6.7%% loss after degraded: verdict %v, want degraded (hysteresis)", s.u.verdict)
	}
	// 1 in 30 keeps exactly one failure, 3.3%: below leave.
	lossPattern(s, 90, 30)
	if s.u.verdict != VerdictUp {
		t.Fatalf("3.3%% loss: verdict %v (%s), want up", s.u.verdict, s.u.reasonText())
	}
	s.steps(30, ok)
	if s.u.verdict != VerdictUp {
		t.Fatalf("clean again: verdict %v (%s), want up", s.u.verdict, s.u.reasonText())
	}
	// From up, 6.7% loss does not enter degraded.
	lossPattern(s, 90, 15)
	if s.u.verdict != VerdictUp {
		t.Fatalf("6.7%% loss from up: verdict %v, want up (below enter)", s.u.verdict)
	}
}

func TestDegradedRTTHysteresis(t *testing.T) {
	c := testConfig(2, func(c *Config) { c.RTTEnter, c.RTTLeave = 100*time.Millisecond, 60*time.Millisecond })
	s := newSim(t, c)
	s.steps(20, ok)
	if s.u.verdict != VerdictUp {
		t.Fatalf("clean: %v", s.u.verdict)
	}
	s.steps(20, slow(150*time.Millisecond))
	if s.u.verdict != VerdictDegraded || !strings.Contains(s.u.reasonText(), "rtt p95 150ms") {
		t.Fatalf("150ms: verdict %v (%s), want degraded naming rtt p95 150ms", s.u.verdict, s.u.reasonText())
	}
	s.steps(40, slow(80*time.Millisecond))
	if s.u.verdict != VerdictDegraded {
		t.Fatalf("80ms after degraded: verdict %v, want degraded (between leave and enter)", s.u.verdict)
	}
	s.steps(40, slow(50*time.Millisecond))
	if s.u.verdict != VerdictUp {
		t.Fatalf("50ms: verdict %v (%s), want up", s.u.verdict, s.u.reasonText())
	}
	s.steps(40, slow(80*time.Millisecond))
	if s.u.verdict != VerdictUp {
		t.Fatalf("80ms from up: verdict %v, want up (below enter)", s.u.verdict)
	}
	// p95 and not mean: 1 slow probe in 10 is above the 95th percentile.
	for i := range 40 {
		if i%10 == 0 {
			s.step(slow(300 * time.Millisecond))
		} else {
			s.step(ok)
		}
	}
	if s.u.verdict != VerdictDegraded {
		t.Fatalf("10%% of probes at 300ms: verdict %v (%s), want degraded on p95", s.u.verdict, s.u.reasonText())
	}
}

// TestImprovementIsNotHeld: the verdict recovers as soon as rise
// successes bring the target back; damping a flapping uplink is the
// controller's hold-down, not the health verdict's.
func TestImprovementIsNotHeld(t *testing.T) {
	c := testConfig(1, func(c *Config) { c.Rise, c.Fall = 2, 2 })
	s := newSim(t, c) // interval 1s
	s.steps(2, ok)
	if s.u.verdict != VerdictUp {
		t.Fatalf("first verdict after rise: %v", s.u.verdict)
	}
	s.steps(2, fail)
	if s.u.verdict != VerdictDown {
		t.Fatalf("worsening after fall: %v", s.u.verdict)
	}
	s.step(ok)
	if s.u.verdict != VerdictDown {
		t.Fatalf("one success of rise 2: %v, want still down", s.u.verdict)
	}
	s.step(ok)
	if s.u.verdict != VerdictUp || strings.Contains(s.u.reasonText(), "held") {
		t.Fatalf("rise successes: verdict %v (%s), want up at once", s.u.verdict, s.u.reasonText())
	}
}

// drive brings s to verdict v.
func drive(t *testing.T, s *sim, v Verdict) {
	t.Helper()
	switch v {
	case VerdictUp:
		s.steps(40, ok)
	case VerdictDegraded:
		s.steps(40, slow(200*time.Millisecond))
	case VerdictDown:
		s.steps(10, fail)
	}
	if s.u.verdict != v {
		t.Fatalf("drive to %v: got %v (%s)", v, s.u.verdict, s.u.reasonText())
	}
}

func TestEveryTransition(t *testing.T) {
	states := []Verdict{VerdictUp, VerdictDegraded, VerdictDown}
	for _, from := range states {
		for _, to := range states {
			if from == to {
				continue
			}
			t.Run(from.String()+"->"+to.String(), func(t *testing.T) {
				s := newSim(t, testConfig(2, nil))
				drive(t, s, from)
				n := len(s.trans)
				drive(t, s, to)
				if len(s.trans) == n {
					t.Fatal("no transition recorded")
				}
				last := s.trans[len(s.trans)-1]
				if last.to != to {
					t.Fatalf("last transition %v->%v", last.from, last.to)
				}
				wantWord := map[Verdict]string{VerdictUp: "targets up", VerdictDegraded: "rtt p95", VerdictDown: "targets down"}[to]
				if !strings.Contains(last.reason, wantWord) {
					t.Fatalf("reason %q lacks %q", last.reason, wantWord)
				}
			})
		}
	}
	// Random order: after each settle the verdict is what the input says.
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSim(t, testConfig(2, nil))
	for range 200 {
		drive(t, s, states[rng.IntN(len(states))])
	}
}

func TestRecoveryForgetsOutage(t *testing.T) {
	// After 100% loss the window is full of failures; recovery must come
	// back up after rise, not linger in degraded until the
	// window refills.
	c := testConfig(3, func(c *Config) { c.Interval = 50 * time.Millisecond })
	s := newSim(t, c)
	s.steps(20, ok)
	s.steps(20, fail)
	if s.u.verdict != VerdictDown {
		t.Fatalf("outage: %v", s.u.verdict)
	}
	s.steps(c.Rise, ok)
	if s.u.verdict != VerdictUp {
		t.Fatalf("after rise: verdict %v (%s), want up", s.u.verdict, s.u.reasonText())
	}
}

func TestStartupLossForgotten(t *testing.T) {
	// Probes lost while the paths came up (fewer in a row than fall, so
	// the targets never went down) must not hold the uplink in degraded
	// once it has risen: the first rise forgets them as a recovery from
	// down does. Without that, 2 losses in the first 10 probes keep the
	// loss at 20 % until the window has rolled them out.
	c := testConfig(2, nil)
	s := newSim(t, c)
	s.steps(2, fail)
	s.steps(c.Rise, ok)
	if s.u.verdict != VerdictUp {
		t.Fatalf("after rise: verdict %v (%s), want up", s.u.verdict, s.u.reasonText())
	}
	for i := range c.Window {
		s.step(ok)
		if s.u.verdict != VerdictUp {
			t.Fatalf("%d probes after rise: verdict %v (%s), want up", i+1, s.u.verdict, s.u.reasonText())
		}
	}
}

func TestWindowFigures(t *testing.T) {
	w := window{samples: 25, fails: 5}
	for i := 1; i <= 20; i++ {
		w.rtts = append(w.rtts, time.Duration(21-i)*time.Millisecond)
	}
	loss, mean, p95 := w.figures()
	if loss != 20 || mean != 10500*time.Microsecond || p95 != 19*time.Millisecond {
		t.Fatalf("figures = %v, %v, %v; want 20, 10.5ms, 19ms", loss, mean, p95)
	}
	if l, m, p := (&window{}).figures(); l != 0 || m != 0 || p != 0 {
		t.Fatalf("empty window figures = %v %v %v", l, m, p)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestRecordAllocatesNothing: taking a result and re-evaluating the verdict
// runs 20 times a second per target, so it must not build reason strings or
// otherwise allocate; the reason is built when read.
func TestRecordAllocatesNothing(t *testing.T) {
	u := newUplinkTracker("u", "eth0", testConfig(3, nil))
	now := time.Unix(0, 0)
	errLost := errors.New("lost")
	i := 0
	step := func() {
		var err error
		if i%10 == 0 {
			err = errLost // 10% loss: up and degraded both get exercised
		}
		u.targets[i%3].observe(now, time.Duration(i%7)*time.Millisecond, err, false)
		u.evaluate(now)
		now = now.Add(50 * time.Millisecond)
		i++
	}
	for range 100 { // reach a verdict first: the first rise may allocate
		step()
	}
	if u.verdict == VerdictUnknown {
		t.Fatalf("no verdict after 100 results: %s", u.reasonText())
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Fatalf("record + evaluate: %v allocations per result, want 0", n)
	}
	if r := u.reasonText(); !strings.Contains(r, "3 of 3 targets up") {
		t.Fatalf("reason %q", r)
	}
}

// TestReasonWhileUndecidable: an uplink whose k of N cannot be decided
// (a needed target has no result yet) keeps its verdict and says so.
func TestReasonWhileUndecidable(t *testing.T) {
	c := testConfig(3, func(c *Config) { c.Rise, c.Fall = 1, 1 })
	u := newUplinkTracker("u", "eth0", c)
	now := time.Unix(0, 0)
	u.targets[0].observe(now, time.Millisecond, nil, false)
	u.targets[1].observe(now, time.Millisecond, nil, false)
	if !u.evaluate(now) || u.verdict != VerdictUp {
		t.Fatalf("2 of 3 up (min_up 2): %v (%s)", u.verdict, u.reasonText())
	}
	u.targets[1].observe(now, 0, errTimeout, false)
	if u.evaluate(now) || u.verdict != VerdictUp {
		t.Fatalf("1 up, 1 down, 1 unknown: %v, want up kept", u.verdict)
	}
	if r := u.reasonText(); !strings.Contains(r, "keeping up") || !strings.Contains(r, "1 of 3 targets up, 1 down") {
		t.Fatalf("reason %q", r)
	}
}

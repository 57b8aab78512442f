package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// scriptedProber answers at once, failing or replying after the RTT its
// script gives for the clock time of the probe, and records those times.
type scriptedProber struct {
	clock  *fakeClock
	t0     time.Time
	script func(at time.Duration) (rtt time.Duration, fail bool)

	mu sync.Mutex
	at []time.Duration
}

func (p *scriptedProber) Probe(context.Context) (time.Duration, error) {
	at := p.clock.Now().Sub(p.t0)
	p.mu.Lock()
	p.at = append(p.at, at)
	p.mu.Unlock()
	if rtt, fail := p.script(at); !fail {
		return rtt, nil
	}
	return 0, errors.New("no reply")
}

func (p *scriptedProber) times() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.at)
}

// TestSchedulerBurst drives the real scheduler (Run, its timer, its
// workers) on the fake clock through three suspicion bursts on an uplink
// of two targets at 1s, rise 2, fall 3, min_up 2, bursts of up to 3 probes
// 20 ms apart:
//
//   - 3s: target 0 loses one probe; the burst's first round (one probe to
//     each target, at once) is answered: the suspicion is cleared after
//     that one round, and the verdict stays up;
//   - 4s: target 1 answers in 200 ms after a steady 20 ms (an RTT jump):
//     another burst, cleared by its first round;
//   - 6s to 8s: target 0 answers nothing (a gray failure): target 1 clears
//     its part in the first round, target 0's steady loss at 6s and its two
//     burst losses make fall 3 at 6.02s, not at 8s as the steady probes
//     alone would, and being down (confirmed) it gets no third burst probe,
//     nor a burst for its loss at 7s; it rises again at 9s.
//
// The tick probes at 3s, 4s and 6s were sent before the suspicion, so
// their replies clear nothing: each target gets the first round. The clock
// is moved to each time a probe is expected at, and the test waits there
// until those probes have run and ended, so a missing probe fails the wait
// and an extra one fails the final comparison of the probe times, which
// also shows the steady 1s grid untouched by the bursts.
func TestSchedulerBurst(t *testing.T) {
	defer goleak.VerifyNone(t)
	t0 := time.Unix(1000, 0)
	clock := &fakeClock{now: t0}
	c := testConfig(2, func(c *Config) {
		c.Rise, c.Fall, c.MinUp = 2, 3, 2
		c.BurstInterval, c.BurstProbes = 20*time.Millisecond, 3
		// Not about degraded: keep the 200 ms reply from making it so.
		c.RTTEnter, c.RTTLeave = 500*time.Millisecond, 300*time.Millisecond
	})
	s := func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }
	// Only the first probe at 3s fails, and only the first at 4s is slow,
	// not the burst probe sent at the same instant.
	var seen3, seen4 once
	scripts := []func(time.Duration) (time.Duration, bool){
		func(at time.Duration) (time.Duration, bool) {
			return 10 * time.Millisecond, at == s(3000) && !seen3.swap() || at >= s(6000) && at < s(8000)
		},
		func(at time.Duration) (time.Duration, bool) {
			if at == s(4000) && !seen4.swap() {
				return 200 * time.Millisecond, false
			}
			return 20 * time.Millisecond, false
		},
	}
	var probers []*scriptedProber
	m := newTestMonitor(t, clock, func(Uplink, Target) (Prober, error) {
		p := &scriptedProber{clock: clock, t0: t0, script: scripts[len(probers)]}
		probers = append(probers, p)
		return p, nil
	}, Uplink{Name: "isp-a", Health: c})
	_, stop := startRun(m)
	defer stop()

	ms := func(ms ...int) []time.Duration {
		var d []time.Duration
		for _, v := range ms {
			d = append(d, s(v))
		}
		return d
	}
	wantTimes := [][]time.Duration{
		ms(0, 1000, 2000, 3000, 3000, 4000, 4000, 5000, 6000, 6000, 6020, 7000, 8000, 9000),
		ms(0, 1000, 2000, 3000, 3000, 4000, 4000, 5000, 6000, 6000, 7000, 8000, 9000),
	}
	steps := slices.Sorted(slices.Values(slices.Concat(wantTimes...)))
	steps = slices.Compact(steps)

	var changes []string
	last := VerdictUnknown
	for _, at := range steps {
		clock.Advance(t0.Add(at).Sub(clock.Now()))
		eventually(t, fmt.Sprintf("the probes due by %v to have run and ended", at), func() bool {
			for i, p := range probers {
				upTo := 0
				for upTo < len(wantTimes[i]) && wantTimes[i][upTo] <= at {
					upTo++
				}
				if len(p.times()) < upTo {
					return false
				}
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, sc := range m.gen.scheds {
				if sc.inflight {
					return false
				}
			}
			return true
		})
		if u := m.Snapshot().Uplinks[0]; u.Verdict != last {
			last = u.Verdict
			changes = append(changes, fmt.Sprintf("%v@%v", u.Verdict, u.Since.Sub(t0)))
		}
	}
	for i, p := range probers {
		if got := p.times(); !slices.Equal(got, wantTimes[i]) {
			t.Errorf("target %d probed at %v, want %v", i, got, wantTimes[i])
		}
	}
	if want := []string{"up@1s", "down@6.02s", "up@9s"}; !slices.Equal(changes, want) {
		t.Errorf("verdicts %v, want %v", changes, want)
	}
	u := m.Snapshot().Uplinks[0]
	if u.Bursts != 3 || u.BurstProbes != 7 || u.Targets[0].BurstProbes != 4 || u.Targets[0].Probes != uint64(len(wantTimes[0])) || u.BurstsSuppressed != 0 {
		t.Errorf("counters: %d bursts (%d suppressed), %d burst probes (target 0: %d of %d probes); want 3 (0), 7 (4 of %d)",
			u.Bursts, u.BurstsSuppressed, u.BurstProbes, u.Targets[0].BurstProbes, u.Targets[0].Probes, len(wantTimes[0]))
	}
	// Burst results are not in the window: target 1 has the ten steady
	// probes only, the 200 ms one included.
	if b := u.Targets[1]; b.Samples != 10 {
		t.Errorf("target 1 window holds %d samples, want its 10 steady probes", b.Samples)
	}
}

// once is a flag set by its first swap.
type once struct {
	mu  sync.Mutex
	set bool
}

// swap sets the flag and reports whether it was set before.
func (o *once) swap() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	was := o.set
	o.set = true
	return was
}

// stepper drives the scheduler's decisions (dispatch, finish) by hand on
// the fake clock, with no goroutine: the test says when the scheduler
// wakes and when each probe ends. Its probers are never run.
type stepper struct {
	t     *testing.T
	m     *Monitor
	clock *fakeClock
	t0    time.Time
}

func newStepper(t *testing.T, c Config) *stepper {
	t.Helper()
	t0 := time.Unix(1000, 0)
	clock := &fakeClock{now: t0}
	m := newTestMonitor(t, clock, func(Uplink, Target) (Prober, error) {
		return &scriptedProber{clock: clock, t0: t0}, nil
	}, Uplink{Name: "isp-a", Health: c})
	for _, s := range m.gen.scheds {
		s.due = t0 // as schedule starts them
	}
	return &stepper{t: t, m: m, clock: clock, t0: t0}
}

func (h *stepper) moveTo(at time.Duration) {
	h.t.Helper()
	d := h.t0.Add(at).Sub(h.clock.Now())
	if d < 0 {
		h.t.Fatalf("moving the clock back to %v", at)
	}
	h.clock.Advance(d)
}

// dispatch wakes the scheduler at t0+at and returns the targets it sent a
// probe to and when it would wake next (from t0).
func (h *stepper) dispatch(at time.Duration) (sent []int, next time.Duration) {
	h.t.Helper()
	h.moveTo(at)
	_, n := h.m.dispatch(h.clock.Now(), h.m.gen, nil)
	for i, s := range h.m.gen.scheds {
		select {
		case <-s.work:
			sent = append(sent, i)
		default:
		}
	}
	return sent, n.Sub(h.t0)
}

// end ends target i's probe at t0+at: a reply after 1 ms, or a loss.
func (h *stepper) end(i int, at time.Duration, ok bool) {
	h.t.Helper()
	h.moveTo(at)
	var err error
	if !ok {
		err = errors.New("no reply")
	}
	h.m.finish(context.Background(), h.m.gen.scheds[i], 0, time.Millisecond, err)
}

// kicked reports whether the scheduler was asked to wake up, and forgets it.
func (h *stepper) kicked() bool {
	select {
	case <-h.m.kick:
		return true
	default:
		return false
	}
}

func (h *stepper) uplink() UplinkStatus { return h.m.Snapshot().Uplinks[0] }

// TestBurstRounds: the burst probes of an uplink leave together, one
// round per wake-up: on an uplink of three targets (1 s, fall 5, bursts of
// 3 probes 20 ms apart), target 0's lost probe starts a burst whose first
// round sends to all three at once (the steady replies of 1 and 2 came
// from probes sent before the suspicion, so they clear nothing); 1 and 2
// answer and leave the burst, and no wake-up is asked for them; only the
// failing target 0 is probed at the next rounds. In a second burst, target
// 2 is busy at the first round: it goes alone as soon as its probe ends
// and, still failing, rejoins the uplink's next round with target 0.
func TestBurstRounds(t *testing.T) {
	h := newStepper(t, testConfig(3, func(c *Config) {
		c.Fall = 5
		c.BurstInterval, c.BurstProbes = 20*time.Millisecond, 3
	}))
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	step := func(at int, wantSent []int, wantNext int) {
		t.Helper()
		sent, next := h.dispatch(ms(at))
		if !slices.Equal(sent, wantSent) || next != ms(wantNext) {
			t.Fatalf("wake-up at %dms: sent to %v, next at %v; want %v, next at %dms", at, sent, next, wantSent, wantNext)
		}
	}
	kick := func(at int, want bool) {
		t.Helper()
		if got := h.kicked(); got != want {
			t.Fatalf("at %dms: scheduler asked to wake %v, want %v", at, got, want)
		}
	}

	step(0, []int{0, 1, 2}, 1000)
	for i := range 3 {
		h.end(i, ms(1), true)
	}
	step(1000, []int{0, 1, 2}, 2000)
	h.end(1, ms(1001), true)
	h.end(2, ms(1002), true)
	h.end(0, ms(1005), false)
	kick(1005, true)
	step(1005, []int{0, 1, 2}, 2000) // round 1: all three together
	h.end(1, ms(1006), true)
	h.end(2, ms(1007), true)
	kick(1007, false) // 1 and 2 left the burst: nothing to wake for
	h.end(0, ms(1008), false)
	kick(1008, true)
	step(1008, nil, 1025)
	step(1025, []int{0}, 2000) // round 2: the failing target alone
	h.end(0, ms(1026), false)
	step(1026, nil, 1045)
	step(1045, []int{0}, 2000) // round 3, the last
	h.end(0, ms(1046), true)
	kick(1046, false)
	if u := h.uplink(); u.Bursts != 1 || u.BurstProbes != 5 {
		t.Fatalf("first burst: %d bursts, %d burst probes; want 1, 5 (3 + 1 + 1)", u.Bursts, u.BurstProbes)
	}

	step(2000, []int{0, 1, 2}, 3000)
	for i := range 3 {
		h.end(i, ms(2001), true)
	}
	step(3000, []int{0, 1, 2}, 4000)
	h.end(1, ms(3001), true)
	h.end(0, ms(3002), false)
	step(3002, []int{0, 1}, 4000) // 2 is busy
	h.end(1, ms(3003), true)
	h.end(0, ms(3004), false)
	step(3004, nil, 3022)
	h.end(2, ms(3010), false) // sent before the suspicion: still owed a probe
	kick(3010, true)
	step(3010, []int{2}, 3022) // at once; 0 waits for the round
	h.end(2, ms(3011), false)
	step(3011, nil, 3022) // rejoins the uplink's round
	step(3022, []int{0, 2}, 4000)
	h.end(0, ms(3023), true)
	h.end(2, ms(3023), true)
	if u := h.uplink(); u.Bursts != 2 || u.BurstProbes != 10 || u.BurstsSuppressed != 0 {
		t.Fatalf("second burst: %d bursts (%d suppressed), %d burst probes; want 2 (0), 10 (5 + 2 + 1 + 2)", u.Bursts, u.BurstsSuppressed, u.BurstProbes)
	}
}

// TestBurstMergesTick: a burst round due less than burst_interval before a
// target's steady tick sends that tick's probe at once instead of a burst
// probe, and the tick then sends nothing: one probe, not two, and the 1 s
// grid is kept.
func TestBurstMergesTick(t *testing.T) {
	h := newStepper(t, testConfig(2, func(c *Config) {
		c.BurstInterval, c.BurstProbes = 20*time.Millisecond, 3
	}))
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	h.dispatch(0)
	h.end(0, 0, true)
	h.end(1, 0, true)
	h.dispatch(ms(1000))
	h.end(1, ms(1001), true)
	h.end(0, ms(1985), false) // a slow prober's loss, 15 ms before the next tick
	if sent, next := h.dispatch(ms(1985)); !slices.Equal(sent, []int{0, 1}) || next != ms(3000) {
		t.Fatalf("round at 1985ms: sent to %v, next at %v; want [0 1], next at 3s", sent, next)
	}
	h.end(0, ms(1986), true)
	h.end(1, ms(1986), true)
	if sent, next := h.dispatch(ms(2000)); len(sent) != 0 || next != ms(3000) {
		t.Fatalf("tick at 2s: sent to %v, next at %v; want none, next at 3s", sent, next)
	}
	u := h.uplink()
	if u.Bursts != 1 || u.BurstProbes != 0 || u.Targets[0].Probes != 3 || u.Targets[0].Samples != 3 {
		t.Fatalf("%d bursts, %d burst probes, target 0: %d probes, %d in the window; want 1, 0 (both merged with the tick), 3, 3",
			u.Bursts, u.BurstProbes, u.Targets[0].Probes, u.Targets[0].Samples)
	}
}

// TestBurstBudget runs an uplink of three targets at 20 Hz (fall 3, bursts
// of 3 probes 20 ms apart) on the fake clock, every probe answered or lost
// at once:
//
//   - 0 to 10s: target 0 loses every other probe (random-looking loss that
//     never reaches fall), which without a budget would start a burst
//     every 100 ms, 30 burst probes a second: the budget holds them to its
//     refill (a quarter of the 60 steady probes a second) plus one full
//     burst, and counts the bursts it refused;
//   - 10 to 20s: no loss, the budget refills;
//   - from 20s: every target loses everything (a gray failure): a full
//     burst is paid, and the uplink is down at 20.02s (the lost tick and
//     two burst rounds make fall 3), as fast as with no budget.
func TestBurstBudget(t *testing.T) {
	h := newStepper(t, testConfig(3, func(c *Config) {
		c.Interval, c.Timeout = 50*time.Millisecond, 200*time.Millisecond
		c.Fall = 3
		c.BurstInterval, c.BurstProbes = 20*time.Millisecond, 3
	}))
	var n0 int // target 0's probes
	answer := func(i int, at time.Duration) bool {
		switch {
		case at >= 20*time.Second:
			return false
		case at >= 10*time.Second:
			return true
		case i == 0:
			n0++
			return n0%2 == 1
		}
		return true
	}
	run := func(until time.Duration) {
		now := h.clock.Now().Sub(h.t0)
		for wakes := 0; now < until; wakes++ {
			if wakes > 100000 {
				t.Fatal("the scheduler does not settle")
			}
			sent, next := h.dispatch(now)
			for _, i := range sent {
				h.end(i, now, answer(i, now))
			}
			if !h.kicked() {
				now = next
			}
		}
	}
	run(10 * time.Second)
	u := h.uplink()
	const steady = 3 * 20 * 10 // 3 targets at 20 Hz for 10 s
	limit := uint64(steady/4 + 9)
	if u.BurstProbes > limit || u.BurstProbes < limit*8/10 || u.BurstsSuppressed == 0 {
		t.Fatalf("lossy 10 s: %d burst probes in %d bursts, %d suppressed; want at most %d (a quarter of %d steady probes and one full burst), at least 80%% of that, some suppressed",
			u.BurstProbes, u.Bursts, u.BurstsSuppressed, limit, steady)
	}
	t.Logf("lossy 10 s: %d burst probes in %d bursts, %d suppressed", u.BurstProbes, u.Bursts, u.BurstsSuppressed)
	for _, tg := range u.Targets {
		if steadyProbes := tg.Probes - tg.BurstProbes; steadyProbes != 200 {
			t.Fatalf("target %s: %d steady probes in 10 s, want 200 (bursts never move or add ticks)", tg.Target, steadyProbes)
		}
	}
	run(20 * time.Second)
	before := h.uplink()
	run(20*time.Second + 100*time.Millisecond)
	u = h.uplink()
	if u.Verdict != VerdictDown || u.Since.Sub(h.t0) != 20*time.Second+20*time.Millisecond {
		t.Fatalf("gray failure at 20s: verdict %v since %v, want down since 20.02s", u.Verdict, u.Since.Sub(h.t0))
	}
	if got := u.BurstProbes - before.BurstProbes; u.BurstsSuppressed != before.BurstsSuppressed || got != 6 {
		t.Fatalf("gray failure: %d burst probes, %d more suppressed; want 6 (two rounds of 3, then down), none", got, u.BurstsSuppressed-before.BurstsSuppressed)
	}
}

// TestBurstBudgetRefill: the bucket starts full, pays one probe per token,
// refills at its rate and never holds more than one full burst.
func TestBurstBudgetRefill(t *testing.T) {
	c := testConfig(3, func(c *Config) { c.Interval, c.Timeout = 50*time.Millisecond, 200*time.Millisecond })
	b := newBurstBudget(c)
	if b.capacity != 9 || b.rate != 15 {
		t.Fatalf("3 targets at 20 Hz, bursts of 3: capacity %v, rate %v/s; want 9, 15 (a quarter of 60)", b.capacity, b.rate)
	}
	t0 := time.Unix(1000, 0)
	for i := range 9 {
		if !b.take(t0) {
			t.Fatalf("probe %d of a full burst refused", i+1)
		}
	}
	if b.take(t0) || b.has(t0, 1) {
		t.Fatal("a tenth probe paid from a bucket of 9")
	}
	if !b.has(t0.Add(200*time.Millisecond), 3) || b.has(t0.Add(200*time.Millisecond), 4) {
		t.Fatalf("after 200 ms: %v tokens, want 3", b.tokens)
	}
	if b.has(t0.Add(time.Hour), 10) || !b.has(t0.Add(time.Hour), 9) {
		t.Fatalf("after an hour: %v tokens, want 9 (one full burst)", b.tokens)
	}
	slow := newBurstBudget(testConfig(3, nil))
	if slow.rate != 4.5 {
		t.Fatalf("3 targets at 1 s: rate %v/s, want 4.5 (a full burst of 9 per 2 s, above a quarter of 3/s)", slow.rate)
	}
}

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

package health

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRTOEstimator feeds RTT series to the estimator and checks the
// timeout it gives against values worked out by hand from RFC 6298's
// formulas (alpha 1/8, beta 1/4, K 4, G 10ms).
func TestRTOEstimator(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	repeat := func(d time.Duration, n int) []time.Duration {
		var out []time.Duration
		for range n {
			out = append(out, d)
		}
		return out
	}
	alternate := func(a, b time.Duration, n int) []time.Duration {
		var out []time.Duration
		for i := range n {
			out = append(out, a)
			if i%2 == 1 {
				out[len(out)-1] = b
			}
		}
		return out
	}
	for _, tc := range []struct {
		name           string
		samples        []time.Duration
		floor, ceiling time.Duration
		backoff        int
		want           time.Duration // exact, or the lower end of [want, wantMax]
		wantMax        time.Duration
		wantSRTT       time.Duration // checked when nonzero
	}{
		// Before the first reply the ceiling is all we know.
		{name: "no sample", floor: ms(50), ceiling: time.Second, want: time.Second},
		// First sample: SRTT = R, RTTVAR = R/2, RTO = R + 4*R/2.
		{name: "first sample", samples: []time.Duration{ms(40)}, floor: ms(50), ceiling: time.Second, want: ms(120), wantSRTT: ms(40)},
		// A steady RTT: RTTVAR decays by 3/4 a sample to nothing, leaving
		// the margin G.
		{name: "steady 40ms", samples: repeat(ms(40), 80), floor: ms(20), ceiling: time.Second, want: ms(50), wantSRTT: ms(40)},
		// Jitter between 30 and 50 ms: SRTT near 40 and RTTVAR near the
		// mean deviation (10 ms), so RTO near 80 ms, above every sample.
		{name: "jitter 30-50ms", samples: alternate(ms(30), ms(50), 80), floor: ms(20), ceiling: time.Second, want: ms(70), wantMax: ms(90)},
		// A jump after a steady 10 ms: SRTT += 90/8, RTTVAR = 90/4 (the
		// old one decayed to nothing), RTO = 21.25 + 4*22.5.
		{name: "jump 10->100ms", samples: append(repeat(ms(10), 80), ms(100)), floor: ms(20), ceiling: time.Second, want: ms(111.25), wantSRTT: ms(21.25)},
		// A target 1 ms away: 11 ms, clamped up to the floor.
		{name: "clamp at floor", samples: repeat(ms(1), 80), floor: ms(50), ceiling: time.Second, want: ms(50)},
		// A slow first reply: 400 + 4*200 ms, clamped down to the ceiling.
		{name: "clamp at ceiling", samples: []time.Duration{ms(400)}, floor: ms(50), ceiling: time.Second, want: time.Second},
		// Backoff doubles from the clamped estimate, up to the ceiling.
		{name: "backoff 1", samples: repeat(ms(1), 80), floor: ms(30), ceiling: ms(200), backoff: 1, want: ms(60)},
		{name: "backoff 2", samples: repeat(ms(1), 80), floor: ms(30), ceiling: ms(200), backoff: 2, want: ms(120)},
		{name: "backoff past ceiling", samples: repeat(ms(1), 80), floor: ms(30), ceiling: ms(200), backoff: 9, want: ms(200)},
		{name: "negative backoff is none", samples: repeat(ms(1), 80), floor: ms(30), ceiling: ms(200), backoff: -2, want: ms(30)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e rtoEstimator
			for _, r := range tc.samples {
				e.sample(r)
			}
			got := e.timeout(tc.floor, tc.ceiling, tc.backoff)
			if tc.wantMax == 0 && got != tc.want || tc.wantMax != 0 && (got < tc.want || got > tc.wantMax) {
				t.Errorf("timeout = %v, want %v (max %v); srtt %v rttvar %v", got, tc.want, tc.wantMax, e.srtt, e.rttvar)
			}
			if tc.wantSRTT != 0 && e.srtt != tc.wantSRTT {
				t.Errorf("srtt = %v, want %v", e.srtt, tc.wantSRTT)
			}
			for _, r := range tc.samples {
				if got < min(r, tc.ceiling) {
					t.Errorf("timeout %v is below a sample %v it was estimated from", got, r)
					break
				}
			}
		})
	}
}

func TestRTOJumped(t *testing.T) {
	var e rtoEstimator
	if e.jumped(time.Hour) {
		t.Error("a jump before the first sample")
	}
	for range 80 {
		e.sample(10 * time.Millisecond)
	}
	// bound = 10 ms + max(10 ms, ~0): a reply up to 20 ms is expected.
	if e.jumped(20 * time.Millisecond) {
		t.Error("20 ms after a steady 10 ms is within SRTT + G")
	}
	if !e.jumped(21 * time.Millisecond) {
		t.Error("21 ms after a steady 10 ms is above SRTT + G")
	}
}

// TestAdaptiveTimeout steps the scheduler by hand (as TestDispatch does):
// an echo target gets the ceiling before its first reply, then its adaptive
// timeout; a timed-out probe gives no RTT sample (Karn), losses past fall
// double the timeout, and a late reply ends the run of losses and doubles
// the timeout until a reply in time. A worker target gets its timeout with
// the go-ahead.
func TestAdaptiveTimeout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clock := &fakeClock{now: t0}
	c := testConfig(2, func(c *Config) {
		c.Fall, c.NoBursts = 2, true
		c.Timeout, c.TimeoutFloor = time.Second, 50*time.Millisecond
	})
	m := newTestMonitor(t, clock, echoFirst(&fakeProber{}), Uplink{Name: "isp-a", Health: c})
	echo, work := m.gen.scheds[0], m.gen.scheds[1]
	for _, s := range m.gen.scheds {
		s.due = t0
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	step := func(d, wantNext time.Duration) {
		t.Helper()
		clock.mu.Lock()
		clock.now = at(d)
		clock.mu.Unlock()
		if _, next := m.dispatch(at(d), m.gen, nil); !next.Equal(at(wantNext)) {
			t.Fatalf("at %v: next event at %v, want %v", d, next.Sub(t0), wantNext)
		}
	}
	goAhead := func() time.Duration {
		t.Helper()
		select {
		case d := <-work.work:
			return d
		default:
			t.Fatal("no go-ahead for the worker")
			return 0
		}
	}
	ms := time.Millisecond

	// No reply yet: the ceiling, so the deadline is after the next tick.
	step(0, time.Second)
	if !echo.deadline.Equal(at(time.Second)) || goAhead() != time.Second {
		t.Fatalf("first probe: deadline %v, want the 1s ceiling", echo.deadline.Sub(t0))
	}
	clock.Advance(5 * ms)
	m.finish(context.Background(), echo, 1, 5*ms, nil)
	m.finish(context.Background(), work, 0, 5*ms, nil)
	// 5 ms + max(10 ms, 4 * 2.5 ms) = 15 ms, clamped to the 50 ms floor.
	step(time.Second, 1050*ms)
	if got := goAhead(); got != 50*ms {
		t.Errorf("worker timeout after a 5 ms reply = %v, want the 50 ms floor", got)
	}
	srtt := echo.tt.rto.srtt
	step(1050*ms, 2*time.Second) // the echo times out
	if echo.tt.failRun != 1 || !strings.Contains(echo.tt.lastErr, "(50ms)") {
		t.Fatalf("after the timeout: failRun %d, error %q", echo.tt.failRun, echo.tt.lastErr)
	}
	if echo.tt.rto.srtt != srtt {
		t.Errorf("a timed-out probe changed SRTT from %v to %v (Karn: no sample)", srtt, echo.tt.rto.srtt)
	}
	// Second loss (fall 2, target down): the next timeout doubles, and
	// again after the third.
	step(2*time.Second, 2050*ms)
	step(2050*ms, 3*time.Second)
	if echo.tt.state != TargetDown {
		t.Fatalf("state %v after fall losses", echo.tt.state)
	}
	step(3*time.Second, 3100*ms)
	step(3100*ms, 4*time.Second)
	step(4*time.Second, 4200*ms)
	// The reply to the probe lost at 3.1s comes in late (the one in flight
	// keeps its deadline): no sample (Karn), no result, but the run of
	// losses ends and the timeout stays doubled until a reply in time. A
	// duplicate of it counts once.
	clock.Advance(10 * ms)
	m.finish(context.Background(), echo, 4, 900*ms, nil)
	m.finish(context.Background(), echo, 4, 900*ms, nil)
	if tt := echo.tt; tt.rto.srtt != srtt || tt.probes != 4 || tt.failRun != 0 || tt.lateReplies != 1 {
		t.Fatalf("after a late reply: srtt %v (was %v), %d probes, failRun %d, %d late replies; want no sample, 4 probes, 0, 1",
			tt.rto.srtt, srtt, tt.probes, tt.failRun, tt.lateReplies)
	}
	step(4200*ms, 5*time.Second) // seq 5 lost: failRun 1, below fall
	step(5*time.Second, 5100*ms) // the floor, doubled once for the late reply
	// A reply in time resets the backoff: back to the estimate (SRTT moved
	// to 5 + (20-5)/8 ms; still under the floor).
	clock.Advance(20 * ms)
	m.finish(context.Background(), echo, 6, 20*ms, nil)
	step(6*time.Second, 6050*ms)
}

package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestDispatch steps the scheduler's decisions by hand (no goroutine, no
// socket): one echo target with a timeout (1.5s) longer than its interval,
// and one worker target, both at 1s. It checks when probes start, that they
// never overlap, that echo timeouts are judged by the scheduler, that stale
// and late replies are not taken as results, that a probe ending after its tick wakes
// the scheduler, and the time of the next wake-up: the next tick even while
// an echo is in flight, never a time in the past while a probe runs.
func TestDispatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clock := &fakeClock{now: t0}
	// Fixed timeouts and no bursts: this test is about the grid (see
	// TestSchedulerBurst and TestAdaptiveTimeout for those).
	c := testConfig(2, func(c *Config) { c.Rise, c.Fall, c.NoBursts = 1, 1, true })
	c.Targets[0].Timeout, c.Targets[0].TimeoutFloor = 1500*time.Millisecond, 1500*time.Millisecond
	worker := &fakeProber{fail: new(atomic.Bool)}
	m := newTestMonitor(t, clock, echoFirst(worker), Uplink{Name: "isp-a", Health: c})
	echo, work := m.gen.scheds[0], m.gen.scheds[1]
	if echo.echo == nil || work.work == nil {
		t.Fatal("the ICMP target must be sent by the scheduler, the other run by a worker")
	}
	ctx := context.Background()
	for _, s := range m.gen.scheds {
		s.due = t0
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	setClock := func(d time.Duration) {
		clock.mu.Lock()
		defer clock.mu.Unlock()
		clock.now = at(d)
	}
	step := func(d time.Duration, wantSends int, wantNext time.Duration) []echoSend {
		t.Helper()
		setClock(d)
		sends, next := m.dispatch(at(d), m.gen, nil)
		if len(sends) != wantSends || !next.Equal(at(wantNext)) {
			t.Fatalf("at %v: %d sends, next at %v; want %d, %v", d, len(sends), next.Sub(t0), wantSends, wantNext)
		}
		return sends
	}
	goAhead := func() bool {
		select {
		case <-work.work:
			return true
		default:
			return false
		}
	}
	kicked := func() bool {
		select {
		case <-m.kick:
			return true
		default:
			return false
		}
	}
	probes := func() (uint64, uint64) { return echo.tt.probes, work.tt.probes }

	// Start: both due. The next event is the tick, before the deadline.
	sends := step(0, 1, time.Second)
	if sends[0].seq != 1 || !goAhead() {
		t.Fatalf("start: sends %+v", sends)
	}
	setClock(5 * time.Millisecond)
	m.finish(ctx, echo, 1, 5*time.Millisecond, nil)
	if e, _ := probes(); e != 1 || echo.tt.state != TargetUp || kicked() {
		t.Fatalf("reply: %d probes, state %v", e, echo.tt.state)
	}
	// Nothing due until the tick, even with the worker still running.
	step(300*time.Millisecond, 0, time.Second)
	// Tick: the echo goes, the worker is still busy (no overlap, no
	// go-ahead); its passed tick is not an event.
	if sends = step(time.Second, 1, 2*time.Second); sends[0].seq != 2 || goAhead() {
		t.Fatalf("tick 1: sends %+v", sends)
	}
	m.finish(ctx, echo, 1, time.Millisecond, nil) // stale reply to seq 1
	if e, _ := probes(); e != 1 {
		t.Fatal("a reply to an earlier echo was taken for the one in flight")
	}
	// Tick 2 finds both still in flight: the echo's deadline is next.
	step(2*time.Second, 0, 2500*time.Millisecond)
	// The echo times out, judged by the scheduler, and the next echo goes
	// at once, for the tick it missed.
	if sends = step(2500*time.Millisecond, 1, 3*time.Second); sends[0].seq != 3 {
		t.Fatalf("after timeout: sends %+v", sends)
	}
	if e, _ := probes(); e != 2 || echo.tt.state != TargetDown || !strings.Contains(echo.tt.lastErr, "no reply before the timeout") {
		t.Fatalf("timeout: %d probes, state %v, error %q", e, echo.tt.state, echo.tt.lastErr)
	}
	m.finish(ctx, echo, 2, time.Millisecond, nil) // after its timeout
	if e, _ := probes(); e != 2 {
		t.Fatal("a reply after the timeout was recorded")
	}
	// The worker ends after its tick: it wakes the scheduler, which starts
	// its next probe at once; the next tick stays on the 1s grid.
	setClock(2700 * time.Millisecond)
	m.finish(ctx, work, 0, time.Millisecond, nil)
	if !kicked() {
		t.Fatal("a probe that ended after its tick did not wake the scheduler")
	}
	step(2700*time.Millisecond, 0, 3*time.Second)
	if !goAhead() || !work.due.Equal(at(3*time.Second)) {
		t.Fatalf("late worker: not restarted at once, or next tick %v", work.due.Sub(t0))
	}
	// A cancelled Monitor records nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	m.finish(cctx, work, 0, time.Millisecond, nil)
	if _, w := probes(); w != 1 || !work.inflight {
		t.Fatal("a result after cancellation was recorded")
	}
}

func TestNextTick(t *testing.T) {
	t0 := time.Unix(0, 0)
	for _, tc := range []struct{ now, want time.Duration }{
		{0, time.Second},
		{999 * time.Millisecond, time.Second},
		{time.Second, 2 * time.Second}, // a tick at now has been used
		{3500 * time.Millisecond, 4 * time.Second},
	} {
		if got := nextTick(t0, time.Second, t0.Add(tc.now)); !got.Equal(t0.Add(tc.want)) {
			t.Errorf("nextTick(0, 1s, %v) = %v, want %v", tc.now, got.Sub(t0), tc.want)
		}
	}
}

// timedProber records the clock time of every probe it is asked for, and
// fails while its switch is on. Its n-th probe (from 1) takes base + n ms,
// so that every reply has its own RTT.
type timedProber struct {
	clock *fakeClock
	fail  *atomic.Bool
	base  time.Duration

	mu sync.Mutex
	at []time.Time
}

func (p *timedProber) Probe(context.Context) (time.Duration, error) {
	p.mu.Lock()
	p.at = append(p.at, p.clock.Now())
	n := len(p.at)
	p.mu.Unlock()
	if p.fail.Load() {
		return 0, errors.New("no reply")
	}
	return p.base + time.Duration(n)*time.Millisecond, nil
}

func (p *timedProber) times(t0 time.Time) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Duration
	for _, a := range p.at {
		out = append(out, a.Sub(t0))
	}
	return out
}

// TestSchedulerFakeClock runs the real scheduler (Run, its timer, the
// workers) on the fake clock: two targets at 1s and 1.5s, rise 2, fall 2,
// min_up 2; the first target fails from 5s to 7s. The clock only ever jumps
// to the time the scheduler's timer is set for, once every probe in flight
// has ended, so the test sees exactly when the scheduler chooses to wake,
// when each probe starts, when the verdict changes, and the live figures
// and their times in the middle of the outage.
func TestSchedulerFakeClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	t0 := time.Unix(1000, 0)
	clock := &fakeClock{now: t0}
	fail := new(atomic.Bool)
	// No bursts: this test is about the grid (TestSchedulerBurst adds them).
	c := testConfig(2, func(c *Config) { c.Rise, c.Fall, c.MinUp, c.NoBursts = 2, 2, 2, true })
	c.Targets[1].Interval = 1500 * time.Millisecond
	var probers []*timedProber
	m := newTestMonitor(t, clock, func(Uplink, Target) (Prober, error) {
		p := &timedProber{clock: clock, fail: new(atomic.Bool), base: time.Duration(10*(len(probers)+1)) * time.Millisecond}
		if len(probers) == 0 {
			p.fail = fail
		}
		probers = append(probers, p)
		return p, nil
	}, Uplink{Name: "isp-a", Health: c})
	_, stop := startRun(m)
	defer stop()

	// asleep waits until the scheduler has set its timer and no probe is
	// in flight, and returns when the timer fires. Probes here end at
	// once, so nothing wakes the scheduler but its timer.
	asleep := func() time.Time {
		t.Helper()
		var next time.Time
		eventually(t, "the scheduler asleep with no probe in flight", func() bool {
			m.mu.Lock()
			for _, s := range m.gen.scheds {
				if s.inflight {
					m.mu.Unlock()
					return false
				}
			}
			m.mu.Unlock()
			var ok bool
			next, ok = clock.nextTimer()
			return ok
		})
		return next
	}
	var wakes []time.Duration
	var changes []string // verdict@since, for every verdict seen
	last := VerdictUnknown
	var during UplinkStatus // at 6s, once its probes are done
	for {
		next := asleep()
		if clock.Now().Equal(t0.Add(6 * time.Second)) {
			during = m.Snapshot().Uplinks[0]
		}
		if u := m.Snapshot().Uplinks[0]; u.Verdict != last {
			last = u.Verdict
			changes = append(changes, fmt.Sprintf("%v@%v", u.Verdict, u.Since.Sub(t0)))
		}
		at := next.Sub(t0)
		if at > 9*time.Second {
			break
		}
		fail.Store(at >= 5*time.Second && at < 7*time.Second)
		wakes = append(wakes, at)
		clock.Advance(next.Sub(clock.Now()))
	}

	ms := func(v ...float64) []time.Duration {
		var out []time.Duration
		for _, s := range v {
			out = append(out, time.Duration(s*float64(time.Second)))
		}
		return out
	}
	if want := ms(1, 1.5, 2, 3, 4, 4.5, 5, 6, 7, 7.5, 8, 9); !slices.Equal(wakes, want) {
		t.Errorf("scheduler woke at %v, want %v (the ticks of both targets, nothing else)", wakes, want)
	}
	if got, want := probers[0].times(t0), ms(0, 1, 2, 3, 4, 5, 6, 7, 8, 9); !slices.Equal(got, want) {
		t.Errorf("1s target probed at %v, want %v", got, want)
	}
	if got, want := probers[1].times(t0), ms(0, 1.5, 3, 4.5, 6, 7.5, 9); !slices.Equal(got, want) {
		t.Errorf("1.5s target probed at %v, want %v", got, want)
	}
	// Up once both targets rose (the second's second probe at 1.5s), down
	// at the first target's second failure (6s), up at its second success
	// after the outage (8s).
	if want := []string{"up@1.5s", "down@6s", "up@8s"}; !slices.Equal(changes, want) {
		t.Errorf("verdicts %v, want %v", changes, want)
	}

	// At 6s the first target has failed its probes at 5s and 6s: its last
	// reply is the 5th probe's (at 4s, 10+5 ms), its figures are as of 6s.
	// The second target (20 ms + n) answered its 5th probe at 6s; being the
	// only one up, it alone makes the uplink's figures.
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	a, b := during.Targets[0], during.Targets[1]
	if a.RTTLast != 15*time.Millisecond || !a.LastReply.Equal(at(4*time.Second)) || !a.LastProbe.Equal(at(6*time.Second)) ||
		a.Samples != 7 || a.RTTMean != 13*time.Millisecond || a.LastError != "no reply" {
		t.Errorf("failing target at 6s: %+v", a)
	}
	if b.RTTLast != 25*time.Millisecond || !b.LastReply.Equal(at(6*time.Second)) || !b.LastProbe.Equal(at(6*time.Second)) || b.Samples != 5 {
		t.Errorf("answering target at 6s: %+v", b)
	}
	if during.RTTLast != b.RTTLast || !during.LastReply.Equal(b.LastReply) || !during.LastProbe.Equal(at(6*time.Second)) ||
		during.Samples != 5 || during.Loss != 0 || during.RTTMean != 23*time.Millisecond {
		t.Errorf("uplink at 6s: %+v", during)
	}
}

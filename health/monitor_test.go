package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
	"go.uber.org/goleak"
)

// fakeClock moves only when Advance is called; its tickers fire like
// time.Ticker (capacity 1, ticks dropped when the reader is behind).
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

type fakeTicker struct {
	c       chan time.Time
	period  time.Duration
	next    time.Time
	stopped atomic.Bool
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTicker(d time.Duration) Ticker {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{c: make(chan time.Time, 1), period: d, next: f.now.Add(d)}
	f.tickers = append(f.tickers, t)
	return t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.tickers {
		for !t.stopped.Load() && !t.next.After(f.now) {
			select {
			case t.c <- t.next:
			default:
			}
			t.next = t.next.Add(t.period)
		}
	}
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               { t.stopped.Store(true) }

// fakeProber answers according to a switch the test flips.
type fakeProber struct {
	fail   *atomic.Bool
	calls  atomic.Int64
	closed atomic.Bool
}

func (p *fakeProber) Probe(ctx context.Context) (time.Duration, error) {
	p.calls.Add(1)
	if p.fail.Load() {
		return 0, errors.New("no reply")
	}
	return 3 * time.Millisecond, nil
}

func (p *fakeProber) Close() error { p.closed.Store(true); return nil }

// eventually polls cond until it holds or a bound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestMonitor(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	failA := new(atomic.Bool)
	failB := new(atomic.Bool)
	var probers []*fakeProber
	uplink := func(name, dev string) Uplink {
		c := testConfig(2, func(c *Config) { c.Rise, c.Fall = 2, 2 })
		return Uplink{Name: name, Device: dev, Health: c}
	}
	m, err := NewMonitor(Options{
		Uplinks: []Uplink{uplink("isp-a", "eth-a"), uplink("isp-b", "eth-b")},
		Clock:   clock,
		Logger:  slog.New(slog.DiscardHandler),
		NewProber: func(u Uplink, t Target) (Prober, error) {
			p := &fakeProber{fail: failA}
			if u.Name == "isp-b" {
				p.fail = failB
			}
			probers = append(probers, p)
			return p, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stopped := false
	defer func() { // before goleak's check, also when the test fails
		if !stopped {
			cancel()
			<-done
		}
	}()

	// probed waits until every target has been probed n times and the results
	// recorded.
	probed := func(n uint64) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d probes per target", n), func() bool {
			for _, u := range m.Snapshot().Uplinks {
				for _, tg := range u.Targets {
					if tg.Probes < n {
						return false
					}
				}
			}
			return true
		})
	}
	tick := uint64(1)
	round := func() {
		t.Helper()
		clock.Advance(time.Second)
		tick++
		probed(tick)
	}
	verdicts := func() string {
		var s []string
		for _, u := range m.Snapshot().Uplinks {
			s = append(s, u.Name+"="+u.Verdict.String())
		}
		return strings.Join(s, " ")
	}
	drain := func() bool {
		select {
		case <-m.Changed():
			return true
		default:
			return false
		}
	}

	probed(1)
	if got := verdicts(); got != "isp-a=unknown isp-b=unknown" {
		t.Fatalf("after 1 probe: %s", got)
	}
	round()
	if got := verdicts(); got != "isp-a=up isp-b=up" {
		t.Fatalf("after rise: %s", got)
	}
	if !drain() {
		t.Fatal("no Changed signal after the first verdicts")
	}
	if drain() {
		t.Fatal("two changes gave two signals: Changed must be level-triggered (capacity 1)")
	}

	failA.Store(true)
	round()
	round()
	if got := verdicts(); got != "isp-a=down isp-b=up" {
		t.Fatalf("isp-a failing: %s", got)
	}
	if !drain() {
		t.Fatal("no Changed signal for isp-a down")
	}
	a, _ := m.Snapshot().Uplink("isp-a")
	if !strings.Contains(a.Reason, "2 of 2 targets down") || !strings.Contains(a.Reason, "icmp://2001:db8:9000:1::1") {
		t.Fatalf("reason %q does not say which targets failed", a.Reason)
	}
	// No target is up, so the figures cover all: per target 2 successes then
	// 2 failures.
	if a.Targets[0].LastError != "no reply" || a.Loss != 50 || a.Samples != 8 {
		t.Fatalf("figures: last error %q, loss %v", a.Targets[0].LastError, a.Loss)
	}

	// Recovery takes rise probes and nothing more: the hold-down is the
	// controller's.
	failA.Store(false)
	round()
	if got := verdicts(); got != "isp-a=down isp-b=up" {
		t.Fatalf("one success after the outage (rise 2): %s", got)
	}
	round()
	if got := verdicts(); got != "isp-a=up isp-b=up" || !drain() {
		t.Fatalf("after rise: %s", got)
	}

	seq := m.Snapshot().Seq
	cancel()
	stopped = true
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if seq != 4 {
		t.Fatalf("Seq %d: want 4 (two first verdicts, isp-a down, isp-a up)", seq)
	}
	for i, p := range probers {
		if !p.closed.Load() {
			t.Errorf("prober %d not closed after Run", i)
		}
	}
	if err := m.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestNewMonitorRejects(t *testing.T) {
	good := Uplink{Name: "a", Health: testConfig(1, nil)}
	bad := good
	bad.Health.Targets = nil
	for name, opts := range map[string]Options{
		"duplicate name": {Uplinks: []Uplink{good, good}},
		"invalid config": {Uplinks: []Uplink{bad}},
	} {
		if _, err := NewMonitor(opts); err == nil {
			t.Errorf("%s: NewMonitor succeeded", name)
		}
	}
}

// TestDispatch steps the scheduler's decisions by hand (no goroutine, no
// socket): one echo target with a timeout (1.5s) longer than its interval,
// and one worker target, both at 1s. It checks when probes start, that they
// never overlap, that echo timeouts are judged by the scheduler, that stale
// and late replies are ignored, that a probe ending after its tick wakes
// the scheduler, and the time of the next wake-up: the next tick even while
// an echo is in flight, never a time in the past while a probe runs.
func TestDispatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	clock := &fakeClock{now: t0}
	c := testConfig(2, func(c *Config) { c.Rise, c.Fall = 1, 1 })
	c.Targets[0].Timeout = 1500 * time.Millisecond
	worker := &fakeProber{fail: new(atomic.Bool)}
	n := 0
	m, err := NewMonitor(Options{
		Uplinks: []Uplink{{Name: "isp-a", Health: c}},
		Clock:   clock,
		Logger:  slog.New(slog.DiscardHandler),
		NewProber: func(u Uplink, tg Target) (Prober, error) {
			n++
			if n == 1 {
				return newICMPProber(pin{dst: tg.Address}), nil
			}
			return worker, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
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

// TestMonitorEchoLoopback runs a Monitor with the system clock and real
// ICMP probers (IPv6 and IPv4 loopback) until every target has been probed
// several times and is up, then stops it: the scheduler's timer, the
// echoes it sends and the readers of their sockets work together, every
// reply is taken for its own probe, and Run leaves no goroutine behind.
func TestMonitorEchoLoopback(t *testing.T) {
	testenv.Need(t) // raw sockets need root
	defer goleak.VerifyNone(t)
	c := testConfig(4, func(c *Config) { c.Interval, c.Rise = 50*time.Millisecond, 2 })
	var probers []*icmpProber
	m, err := NewMonitor(Options{
		Uplinks: []Uplink{{Name: "lo", Health: c}},
		Logger:  slog.New(slog.DiscardHandler),
		NewProber: func(Uplink, Target) (Prober, error) {
			dst := "::1"
			if len(probers)%2 == 1 {
				dst = "127.0.0.1"
			}
			p := newICMPProber(pin{dst: mustAddr(dst)})
			probers = append(probers, p)
			return p, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	eventually(t, "5 successful probes per target", func() bool {
		for _, tg := range m.Snapshot().Uplinks[0].Targets {
			if tg.Probes < 5 || tg.State != TargetUp || tg.LastError != "" {
				return false
			}
		}
		return true
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if u := m.Snapshot().Uplinks[0]; u.Verdict != VerdictUp {
		t.Fatalf("verdict %v: %s", u.Verdict, u.Reason)
	}
	for i, p := range probers {
		if n := p.skipped.Load(); n != 0 {
			t.Errorf("prober %d read %d packets that were not its replies", i, n)
		}
		if p.conn != nil {
			t.Errorf("prober %d: socket still open after Run", i)
		}
	}
}

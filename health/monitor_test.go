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

// fakeProber answers according to a switch the test flips.
type fakeProber struct {
	fail *atomic.Bool
	// gate, when set, holds every probe until it is closed (or ctx ends).
	gate   chan struct{}
	calls  atomic.Int64
	closed atomic.Bool
}

func (p *fakeProber) Probe(ctx context.Context) (time.Duration, error) {
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	p.calls.Add(1)
	if p.fail.Load() {
		return 0, errors.New("no reply")
	}
	return 3 * time.Millisecond, nil
}

func (p *fakeProber) Close() error { p.closed.Store(true); return nil }

// startRun runs m in a goroutine until stop is called; stop cancels ctx
// and returns what Run returned. stop may be called more than once: defer
// it (after goleak's check is deferred), so that Run has ended before the
// check, also when the test fails.
func startRun(m *Monitor) (ctx context.Context, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	var err error
	return ctx, func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
}

// newTestMonitor builds a monitor of uplinks whose probers come from
// newProber, on clock (nil: the system clock), logging nowhere.
func newTestMonitor(t *testing.T, clock Clock, newProber func(Uplink, Target) (Prober, error), uplinks ...Uplink) *Monitor {
	t.Helper()
	m, err := NewMonitor(Options{Uplinks: uplinks, Clock: clock, Logger: slog.New(slog.DiscardHandler), NewProber: newProber})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// echoFirst is a NewProber for tests that step the scheduler by hand: the
// first target gets a real ICMP prober (sent by the scheduler itself), every
// later one worker (run by a worker goroutine).
func echoFirst(worker Prober) func(Uplink, Target) (Prober, error) {
	n := 0
	return func(_ Uplink, tg Target) (Prober, error) {
		n++
		if n == 1 {
			return newICMPProber(pin{dst: tg.Address}), nil
		}
		return worker, nil
	}
}

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
	m := newTestMonitor(t, clock, func(u Uplink, _ Target) (Prober, error) {
		p := &fakeProber{fail: failA}
		if u.Name == "isp-b" {
			p.fail = failB
		}
		probers = append(probers, p)
		return p, nil
	}, uplink("isp-a", "eth-a"), uplink("isp-b", "eth-b"))
	_, stop := startRun(m)
	defer stop()

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
	if err := stop(); !errors.Is(err, context.Canceled) {
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
	m := newTestMonitor(t, nil, func(Uplink, Target) (Prober, error) {
		dst := "::1"
		if len(probers)%2 == 1 {
			dst = "127.0.0.1"
		}
		p := newICMPProber(pin{dst: mustAddr(dst)})
		probers = append(probers, p)
		return p, nil
	}, Uplink{Name: "lo", Health: c})
	_, stop := startRun(m)
	defer stop()
	eventually(t, "5 successful probes per target", func() bool {
		for _, tg := range m.Snapshot().Uplinks[0].Targets {
			if tg.Probes < 5 || tg.State != TargetUp || tg.LastError != "" {
				return false
			}
		}
		return true
	})
	if err := stop(); !errors.Is(err, context.Canceled) {
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

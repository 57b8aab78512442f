package health

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
)

// BenchmarkRecord is the cost of taking one probe result: tracker update
// and verdict evaluation (3 targets, window 20).
func BenchmarkRecord(b *testing.B) {
	c := testConfig(3, nil)
	u := newUplinkTracker("u", "eth0", c)
	now := time.Unix(0, 0)
	errLost := errors.New("lost")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if i%10 == 0 {
			err = errLost
		}
		u.targets[i%3].observe(now, time.Duration(i%7)*time.Millisecond, err, false)
		u.evaluate(now)
		now = now.Add(50 * time.Millisecond)
		i++
	}
}

// BenchmarkProbeICMPv6 is one echo round trip on loopback with the real
// prober (socket kept open).
func BenchmarkProbeICMPv6(b *testing.B) {
	testenv.Need(b)
	p := newICMPProber(pin{dst: mustAddr("::1")})
	defer p.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c, cancel := context.WithTimeout(ctx, time.Second)
		if _, err := p.Probe(c); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

// BenchmarkProbeICMPv6Deadline is the same round trip with a deadline
// instead of a context (probeUntil).
func BenchmarkProbeICMPv6Deadline(b *testing.B) {
	testenv.Need(b)
	p := newICMPProber(pin{dst: mustAddr("::1")})
	defer p.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.probeUntil(time.Now().Add(time.Second)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbeICMPv6Echo is the same round trip on the Monitor's path:
// sendEcho from the caller, the reply read by the socket's reader
// goroutine (readEchoes) and handed back.
func BenchmarkProbeICMPv6Echo(b *testing.B) {
	testenv.Need(b)
	p := newICMPProber(pin{dst: mustAddr("::1")})
	replies := make(chan uint16, 1)
	done := make(chan struct{})
	defer func() { _ = p.Close(); <-done }()
	var seq uint16
	timeout := time.NewTimer(time.Hour)
	defer timeout.Stop()
	b.ReportAllocs()
	for b.Loop() {
		seq++
		timeout.Reset(time.Second)
		c, err := p.sendEcho(seq)
		if err != nil {
			b.Fatal(err)
		}
		if c != nil {
			conn := c // capturing c itself would move it to the heap each time
			go func() {
				defer close(done)
				p.readEchoes(conn, func(s uint16, _ time.Duration) { replies <- s }, func(err error) { b.Error(err) })
			}()
		}
		select {
		case got := <-replies:
			if got != seq {
				b.Fatalf("reply to seq %d, want %d", got, seq)
			}
		case <-timeout.C:
			b.Fatal("no reply")
		}
	}
}

// BenchmarkProbeTCP is one TCP connect on loopback.
func BenchmarkProbeTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	p := &tcpProber{pin: pin{dst: mustAddr("::1")}, port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	b.ReportAllocs()
	for b.Loop() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		if _, err := p.Probe(c); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
}

// BenchmarkMonitorCPU runs a real Monitor with 4 uplinks x 3 ICMPv6 targets
// at 20 Hz (interval 50ms) against loopback for 3 seconds of wall time, and
// reports the process CPU time used as a percentage of one core (cpu%),
// probes per second and CPU per probe. In the same iteration, for the same
// wall time each, it measures three baselines, so that a loaded machine
// shifts all figures alike:
//
//   - legacy-cpu%: the probing path as it was before it was optimised
//     (legacyMonitor below: a context, timer and wake-up goroutine per probe,
//     unfiltered and unconnected raw sockets that every reply wakes, echo
//     messages built and parsed with x/net/icmp, the reason text formatted
//     on every result), and legacy/new, its ratio to cpu%;
//   - sched-cpu%: the same Monitor with probers that do no I/O, the cost of
//     scheduling and recording alone (such probers, like TCP, HTTP and DNS,
//     run in a worker goroutine per target, woken by the scheduler; ICMP
//     targets have none);
//   - idle-cpu%: the test process sleeping.
//
// All targets are ::1, the worst case for the kernel's raw-socket fan-out,
// and the kernel's own work of answering each echo is charged to this
// process (on loopback it runs in the sender's system call), so the figures
// overstate what probing a remote target costs. Run it with -benchtime=1x
// and -count for repetitions.
func BenchmarkMonitorCPU(b *testing.B) {
	testenv.Need(b)
	var uplinks []Uplink
	for i, name := range []string{"a", "b", "c", "d"} {
		c := testConfig(3, func(c *Config) { c.Interval = 50 * time.Millisecond })
		c.ApplyDefaults(i)
		uplinks = append(uplinks, Uplink{Name: name, Health: c})
	}
	const wall = 3 * time.Second
	// Configured targets are documentation addresses; the probes go to
	// loopback, where the kernel answers.
	loopback := func(Uplink, Target) (Prober, error) { return newICMPProber(pin{dst: mustAddr("::1")}), nil }
	noIO := func(Uplink, Target) (Prober, error) { return noIOProber{}, nil }
	run := func(newProber func(Uplink, Target) (Prober, error)) (pct float64, probes uint64, used time.Duration) {
		m, err := NewMonitor(Options{Uplinks: uplinks, Logger: slog.New(slog.DiscardHandler), NewProber: newProber})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wall)
		defer cancel()
		return measure(func() { _ = m.Run(ctx) }, func() uint64 { return probesOf(m.Snapshot()) })
	}
	for b.Loop() {
		legacy, legacyProbes, _ := measure(func() {
			ctx, cancel := context.WithTimeout(context.Background(), wall)
			defer cancel()
			runLegacy(ctx, uplinks)
		}, legacyProbeCount)
		cur, probes, used := run(loopback)
		sched, _, _ := run(noIO)
		idle, _, _ := measure(func() { <-time.After(wall) }, func() uint64 { return 0 })
		b.ReportMetric(cur, "cpu%")
		b.ReportMetric(legacy, "legacy-cpu%")
		b.ReportMetric(legacy/cur, "legacy/new")
		b.ReportMetric(sched, "sched-cpu%")
		b.ReportMetric(idle, "idle-cpu%")
		b.ReportMetric(float64(probes)/wall.Seconds(), "probes/s")
		b.ReportMetric(float64(used.Nanoseconds())/float64(probes), "cpu-ns/probe")
		if legacyProbes < probes*9/10 {
			b.Fatalf("legacy path sent %d probes, current %d: not comparable", legacyProbes, probes)
		}
	}
}

// measure runs f and returns the process CPU it used as a percentage of one
// core over its wall time, the count after it, and the CPU time.
func measure(f func(), count func() uint64) (pct float64, n uint64, used time.Duration) {
	before, start := cpuTime(), time.Now()
	f()
	used, elapsed := cpuTime()-before, time.Since(start)
	return 100 * used.Seconds() / elapsed.Seconds(), count(), used
}

func probesOf(s Snapshot) uint64 {
	var n uint64
	for _, u := range s.Uplinks {
		for _, t := range u.Targets {
			n += t.Probes
		}
	}
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// noIOProber answers at once without I/O.
type noIOProber struct{}

func (noIOProber) Probe(context.Context) (time.Duration, error) { return time.Millisecond, nil }

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
		u.targets[i%3].observe(now, time.Duration(i%7)*time.Millisecond, err)
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
// at 20 Hz (interval 50ms) against loopback for 3 seconds of wall time per
// iteration, and reports the process CPU time used as a percentage of one
// core (cpu%), and probes per second. Run it with -benchtime=1x.
func BenchmarkMonitorCPU(b *testing.B) {
	testenv.Need(b)
	var uplinks []Uplink
	for i, name := range []string{"a", "b", "c", "d"} {
		c := testConfig(3, func(c *Config) { c.Interval = 50 * time.Millisecond })
		c.ApplyDefaults(i)
		uplinks = append(uplinks, Uplink{Name: name, Health: c})
	}
	const wall = 3 * time.Second
	for b.Loop() {
		m, err := NewMonitor(Options{
			Uplinks: uplinks,
			Logger:  slog.New(slog.DiscardHandler),
			// Configured targets are documentation addresses; the probes go
			// to loopback, where the kernel answers.
			NewProber: func(Uplink, Target) (Prober, error) { return newICMPProber(pin{dst: mustAddr("::1")}), nil },
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wall)
		before := cpuTime()
		start := time.Now()
		_ = m.Run(ctx)
		cancel()
		used, elapsed := cpuTime()-before, time.Since(start)
		var probes uint64
		for _, u := range m.Snapshot().Uplinks {
			for _, t := range u.Targets {
				probes += t.Probes
			}
		}
		b.ReportMetric(100*used.Seconds()/elapsed.Seconds(), "cpu%")
		b.ReportMetric(float64(probes)/elapsed.Seconds(), "probes/s")
		b.ReportMetric(float64(used.Nanoseconds())/float64(probes), "cpu-ns/probe")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

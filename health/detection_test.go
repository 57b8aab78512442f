package health

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// detectionTargets are the probe targets of the detection and
// false-positive tests: two echo targets and one TCP target, min_up 2.
var detectionTargets = []string{
	"icmp://" + inetHost6.String(),
	"icmp://" + inetHost4.String(),
	"tcp://[" + inetHost6.String() + "]:80",
}

// TestIntegrationGrayFailureDefaultProfile checks, in the namespace lab,
// that a gray failure of ISP-A (its router forwards nothing, its link stays
// up) is detected with the default profile (1 s probes, fall 3) well before
// fall x interval = 3 s: the first lost probe starts a suspicion burst whose
// losses reach fall within about 3 adaptive timeouts, so detection takes at
// most about one interval plus 3 x 50 ms. The bound asserted, 2 s, leaves
// room for a loaded CI machine and still fails if the losses had to wait
// for the steady ticks (that takes 2 to 3 s). Targets 1 ms and 40 ms away.
func TestIntegrationGrayFailureDefaultProfile(t *testing.T) {
	for _, dist := range []time.Duration{time.Millisecond, 40 * time.Millisecond} {
		t.Run(fmt.Sprintf("targets %v away", dist), func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			l.distance(t, dist)
			e := l.startEdge(t, detectionTargets, nil)
			both := map[string]string{"isp-a": "up", "isp-b": "up"}
			bUp := map[string]string{"isp-b": "up"}
			e.await(both, nil, 30*time.Second)
			gray := l.faults(t)[0]
			start := time.Now()
			gray.apply()
			e.await(map[string]string{"isp-a": "down"}, bUp, 10*time.Second)
			d := time.Since(start)
			t.Logf("gray failure, targets %v away: isp-a down after %v (%s)", dist, d.Round(time.Millisecond), e.last.Reasons["isp-a"])
			if limit := 2 * time.Second; d > limit {
				t.Errorf("gray failure detected after %v, want at most %v (fall x interval is 3s)", d.Round(time.Millisecond), limit)
			}
			gray.remove()
			e.await(both, bUp, 30*time.Second)
		})
	}
}

// TestNoFalseDown runs ISP-A under 5 % random loss (nftables on its
// forward path) and, separately, under 30 ms of RTT jitter (a delay line on
// the replies whose delay is redrawn in [1 ms, 31 ms] every 5 ms), with the
// default and the fast profile, and fails if either uplink is ever down,
// unless ISP-A's down follows a stall of at least 100 ms of this process
// (measured; it runs the delay line), which holds everything at once and
// is not the impairment under test: such downs are logged with the stall.
// Degraded is allowed (5 % loss is near the 10 % enter threshold over a
// 20-probe window); the log says what the verdicts did and what the bursts
// cost. 30 s each in the default suite; 5 minutes with MH_BENCH=1
// (MH_FP_DURATION overrides either).
func TestNoFalseDown(t *testing.T) {
	dur := 30 * time.Second
	if os.Getenv(benchEnv) == "1" {
		dur = 5 * time.Minute
	}
	if s := os.Getenv("MH_FP_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("MH_FP_DURATION=%q: want a positive duration", s)
		}
		dur = d
	}
	profiles := []struct {
		name string
		mod  func(*Config)
	}{
		{"default", nil},
		{"fast", func(c *Config) {
			c.Interval, c.Timeout, c.Rise, c.Fall, c.Window = 50*time.Millisecond, 200*time.Millisecond, 3, 3, 20
		}},
	}
	for _, pr := range profiles {
		for _, imp := range []string{"5% loss", "30ms jitter"} {
			t.Run(pr.name+" "+imp, func(t *testing.T) {
				t.Parallel()
				l := newLab(t)
				line := l.distance(t, time.Millisecond)
				e := l.startEdge(t, detectionTargets, pr.mod)
				both := map[string]string{"isp-a": "up", "isp-b": "up"}
				e.await(both, nil, 30*time.Second)
				// Host stalls are not what this test is about: a stall of
				// the machine holds every probe, reply or delayed packet at
				// once. A goroutine of this process, woken every 5 ms,
				// measures them (this process also runs the delay line).
				var tick func()
				if imp == "5% loss" {
					l.impairLoss(t, 5)
				} else {
					tick = func() { _ = line.SetDelay(time.Millisecond + rand.N(30*time.Millisecond)) }
				}
				sw := watchStalls(t, tick)
				lines := e.watch(dur)
				stalls := sw.stop()
				s := summarize(lines, dur)
				t.Logf("%s profile, %s for %v: isp-a %s; isp-b %s", pr.name, imp, dur, s["isp-a"], s["isp-b"])
				explained := 0
				for _, ln := range lines {
					for _, u := range []string{"isp-a", "isp-b"} {
						if ln.Verdicts[u] != "down" {
							continue
						}
						if st, ok := stallBefore(stalls, ln.At); ok && u == "isp-a" {
							explained++
							t.Logf("isp-a down at %s: this process (the delay line's) stalled %v just before (%s), beyond the impairment under test",
								ln.At.Format("15:04:05.000"), st.end.Sub(st.start).Round(time.Millisecond), ln.Reasons[u])
							continue
						}
						t.Errorf("%s went down under %s at %s: %s", u, imp, ln.At.Format("15:04:05.000"), ln.Reasons[u])
					}
				}
				var longest time.Duration
				for _, st := range stalls {
					longest = max(longest, st.end.Sub(st.start))
				}
				t.Logf("%s profile, %s: %d stalls of this process of %v or more (longest %v); %d down verdicts explained by one",
					pr.name, imp, len(stalls), stallMin, longest.Round(time.Millisecond), explained)
			})
		}
	}
}

// stallMin is the shortest gap in watchStalls' 5 ms ticks that counts as
// a stall of its process: with fall 3 and the 50 ms timeout
// floor, three probes held about 100 ms past their RTT are lost in a row.
const stallMin = 100 * time.Millisecond

// stall is a gap in the ticks of watchStalls.
type stall struct{ start, end time.Time }

// stallWatcher is a goroutine woken every 5 ms that records the gaps of
// stallMin or more between its wake-ups.
type stallWatcher struct {
	stopOnce func()
	stalls   []stall // the goroutine's until stop
}

// watchStalls starts a stallWatcher that also calls tick, if not nil, at
// every wake-up. It is stopped at cleanup if not before.
func watchStalls(t *testing.T, tick func()) *stallWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &stallWatcher{stopOnce: func() { cancel(); <-done }}
	go func() {
		defer close(done)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				// The time of reading, not the tick's: a stalled
				// process finds an old tick waiting.
				now := time.Now()
				if tick != nil {
					tick()
				}
				if now.Sub(last) >= stallMin {
					w.stalls = append(w.stalls, stall{last, now})
				}
				last = now
			}
		}
	}()
	t.Cleanup(w.stopOnce)
	return w
}

// stop ends the watcher and returns the stalls it saw.
func (w *stallWatcher) stop() []stall {
	w.stopOnce()
	return w.stalls
}

// stallBefore returns a stall that overlaps the 500 ms before at (the
// time a down verdict was read).
func stallBefore(stalls []stall, at time.Time) (stall, bool) {
	for _, st := range stalls {
		if st.end.After(at.Add(-500*time.Millisecond)) && st.start.Before(at) {
			return st, true
		}
	}
	return stall{}, false
}

// summarize says, per uplink, which verdicts the lines went through, how
// often each was entered, and the probes and bursts between the first and
// the last line.
func summarize(lines []edgeLine, dur time.Duration) map[string]string {
	out := map[string]string{}
	first, last := lines[0], lines[len(lines)-1]
	for _, u := range []string{"isp-a", "isp-b"} {
		entered := map[string]int{}
		prev := first.Verdicts[u]
		for _, ln := range lines[1:] {
			if v := ln.Verdicts[u]; v != prev {
				entered[v]++
				prev = v
			}
		}
		var parts []string
		for _, v := range []string{"up", "degraded", "down", "unknown"} {
			if entered[v] > 0 {
				parts = append(parts, fmt.Sprintf("%s entered %dx", v, entered[v]))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "stayed "+first.Verdicts[u])
		}
		a, b := first.Stats[u], last.Stats[u]
		out[u] = fmt.Sprintf("%s; %d probes (%.1f/s), %d bursts, %d burst probes (%.1f%% of the steady probes)",
			strings.Join(parts, ", "), b.Probes-a.Probes, float64(b.Probes-a.Probes)/dur.Seconds(),
			b.Bursts-a.Bursts, b.BurstProbes-a.BurstProbes,
			100*float64(b.BurstProbes-a.BurstProbes)/max(1, float64((b.Probes-a.Probes)-(b.BurstProbes-a.BurstProbes))))
	}
	return out
}

// TestIntegrationRTTStep steps the RTT of ISP-A's targets from 1 ms to
// 121 ms at once, far above their adaptive timeout (the 50 ms floor), with
// the fast profile. The echoes time out, but the late reply of the first
// comes before fall (3) timeouts have passed: it ends the run of losses and
// backs the timeout off, so the echo targets never reach fall. ISP-A must
// never be down (the TCP target, whose connects are cancelled at the
// timeout, may be), and must end degraded on its RTT. A step beyond fall x
// the timeout (150 ms here) cannot be told from a silent path within the
// detection time: see docs/health.md.
func TestIntegrationRTTStep(t *testing.T) {
	l := newLab(t)
	line := l.distance(t, time.Millisecond)
	e := l.startEdge(t, detectionTargets, func(c *Config) {
		c.Interval, c.Timeout, c.Rise, c.Fall, c.Window = 50*time.Millisecond, 200*time.Millisecond, 3, 3, 20
	})
	both := map[string]string{"isp-a": "up", "isp-b": "up"}
	e.await(both, nil, 30*time.Second)
	if err := line.SetDelay(121 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	lines := e.watch(10 * time.Second)
	t.Logf("RTT step 1ms -> 121ms for 10s: isp-a %s; now %s (%s)", summarize(lines, 10*time.Second)["isp-a"],
		e.last.Verdicts["isp-a"], e.last.Reasons["isp-a"])
	for _, ln := range lines {
		if ln.Verdicts["isp-a"] == "down" || ln.Verdicts["isp-b"] != "up" {
			t.Fatalf("verdicts %v after an RTT step (%v)", ln.Verdicts, ln.Reasons)
		}
	}
	if v, why := e.last.Verdicts["isp-a"], e.last.Reasons["isp-a"]; v != "degraded" || !strings.Contains(why, "rtt p95") {
		t.Errorf("isp-a %s (%s) 10s after the step; want degraded on its RTT", v, why)
	}
}

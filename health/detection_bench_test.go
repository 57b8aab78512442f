package health

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchEnv turns on the long-running measurements (minutes) that the
// default suite skips.
const benchEnv = "MH_BENCH"

// TestDetectionTimes measures, in the namespace lab of the integration
// tests, how long the real Monitor takes to change ISP-A's verdict after a
// fault beyond ISP-A, and to bring it back up after the fault is removed, at
// the default profile and at the fast profile, with ISP-A's probe targets
// 1 ms and 40 ms away (a delay line on the replies). Each fault is applied
// MH_BENCH_REPS times (default 3); the test prints a table with the median
// and the worst of each. It measures, it does not judge: the only failures
// are a verdict that never comes (bounded waits) and ISP-B leaving up.
// MH_BENCH_FAULTS, when set, keeps only the faults whose name contains one
// of its comma-separated words (for example "gray,cut").
//
// Opt-in, since it takes minutes:
//
//	MH_BENCH=1 go test -run TestDetectionTimes -v -timeout 60m ./health
//
// Loss is made with nftables (numgen random on ISP-A's forward path) and
// delay with a delay line (internal/delayline), since this kernel has no
// sch_netem.
func TestDetectionTimes(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skipf("long measurement: set %s=1 to run it", benchEnv)
	}
	reps := 3
	if s := os.Getenv("MH_BENCH_REPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("MH_BENCH_REPS=%q: want a positive integer", s)
		}
		reps = n
	}
	var only []string
	if s := os.Getenv("MH_BENCH_FAULTS"); s != "" {
		only = strings.Split(s, ",")
	}
	keep := func(name string) bool {
		for _, w := range only {
			if strings.Contains(name, w) {
				return true
			}
		}
		return only == nil
	}
	profiles := []struct {
		name string
		mod  func(*Config)
		wait time.Duration // bound on each wait
	}{
		{"fast (interval 50ms, timeout 200ms, rise 3, fall 3, window 20)", func(c *Config) {
			c.Interval, c.Timeout, c.Rise, c.Fall, c.Window = 50*time.Millisecond, 200*time.Millisecond, 3, 3, 20
		}, time.Minute},
		{"default (interval 1s, timeout 1s, rise 3, fall 3, window 20)", nil, 3 * time.Minute},
	}
	type row struct {
		profile, fault, verdict string
		dist                    time.Duration
		detect, recover         []time.Duration
	}
	var rows []row
	for _, pr := range profiles {
		for _, dist := range []time.Duration{time.Millisecond, 40 * time.Millisecond} {
			rows = append(rows, func() []row {
				var rows []row
				l := newLab(t)
				l.distance(t, dist)
				e := l.startEdge(t, detectionTargets, pr.mod)
				both := map[string]string{"isp-a": "up", "isp-b": "up"}
				bUp := map[string]string{"isp-b": "up"}
				e.await(both, nil, pr.wait)
				for _, f := range l.faults(t) {
					if !keep(f.name) {
						continue
					}
					r := row{profile: pr.name, fault: f.name, verdict: f.want, dist: dist}
					for i := range reps {
						start := time.Now()
						f.apply()
						e.await(map[string]string{"isp-a": f.want}, bUp, pr.wait)
						d := time.Since(start)
						reason := e.last.Reasons["isp-a"]
						start = time.Now()
						f.remove()
						e.await(both, bUp, pr.wait)
						rec := time.Since(start)
						t.Logf("%s, targets %v away | %s #%d: %s after %v (%s); up %v after removal", pr.name, dist, f.name, i+1, f.want,
							d.Round(time.Millisecond), reason, rec.Round(time.Millisecond))
						r.detect, r.recover = append(r.detect, d), append(r.recover, rec)
					}
					rows = append(rows, r)
				}
				return rows
			}()...)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "detection times, %d repetitions each, median / worst (wall time from the fault command to the verdict):\n", reps)
	fmt.Fprintf(&b, "| profile | targets | fault | verdict | detected | back up after removal |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %v | %s | %s | %s | %s |\n", strings.SplitN(r.profile, " ", 2)[0], r.dist, r.fault, r.verdict, medWorst(r.detect), medWorst(r.recover))
	}
	t.Log("\n" + b.String())
}

// medWorst formats the median (the lower middle for an even count) and the
// maximum of ds.
func medWorst(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%v / %v", s[(len(s)-1)/2].Round(10*time.Millisecond), s[len(s)-1].Round(10*time.Millisecond))
}

// fault is one impairment of ISP-A the lab can apply and remove.
type fault struct {
	name          string
	want          string // ISP-A's verdict under the fault
	apply, remove func()
}

// faults lists the impairments of ISP-A: gray failure (ISP-A's router
// forwards nothing but keeps its link), link cut (ISP-A's end of the link
// goes down, so the edge loses carrier; the Monitor sees it through its
// failing probes, the controller through the carrier), and the path
// impairments of
// TestIntegrationFaults (100% and 20% loss, +150 ms).
func (l *lab) faults(t *testing.T) []fault {
	ctx := context.Background()
	run := func(args ...string) {
		t.Helper()
		if _, err := l.ispa.Run(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	// An administratively downed device loses its IPv6 addresses unless told
	// to keep them; the cut must heal when the link comes back.
	run("sysctl", "-qw", "net.ipv6.conf.ae"+l.id+".keep_addr_on_down=1")
	return append([]fault{
		{"gray failure (ISP-A forwards nothing)", "down",
			func() {
				cmd := l.ispa.Command(ctx, "nft", "-f", "-")
				cmd.Stdin = strings.NewReader("table inet gray {\n chain graydrop {\n  type filter hook forward priority 0; policy drop;\n }\n}\n")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("nft: %v: %s", err, out)
				}
			},
			func() { run("nft", "delete", "table", "inet", "gray") }},
		{"link cut (carrier lost; seen by the probes)", "down",
			func() { run("ip", "link", "set", "ae"+l.id, "down") },
			func() { run("ip", "link", "set", "ae"+l.id, "up") }},
	}, l.impairments(t)...)
}

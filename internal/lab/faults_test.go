package lab

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// pingMin is the "rtt min/avg/max/mdev = 0.1/..." part of ping's summary.
var pingMin = regexp.MustCompile(`= ([0-9.]+)/`)

// TestDelayTargets checks what `mhlab bench --target-delay` relies on: with
// DelayTargets(40ms), an echo from ISP-A to the internet host (over IPv6
// and IPv4, the probe targets of ScenarioConfig) takes at least 40 ms,
// where it took less than 20 ms before, and a second call changes the
// delay rather than adding a second line.
func TestDelayTargets(t *testing.T) {
	testenv.Need(t, "vtysh", "bird", "birdc", "ping", "ip")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := Up(ctx, Options{ID: netns.UniqueID()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	// ISP-A's own route to the host, whatever BGP has learnt by now.
	for _, args := range [][]string{
		{"ip", "-6", "route", "replace", InetAddr6.String() + "/128", "via", TransitAAddr6.String(), "dev", "eth-tr"},
		{"ip", "-4", "route", "replace", InetAddr4.String() + "/32", "via", TransitAAddr4.String(), "dev", "eth-tr"},
	} {
		if _, err := l.ISPA.Run(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	minRTT := func(family, dst string) time.Duration {
		t.Helper()
		out, err := l.ISPA.Run(ctx, "ping", family, "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2", dst)
		if err != nil {
			t.Fatalf("ping %s from ISP-A: %v\n%s", dst, err, out)
		}
		m := pingMin.FindSubmatch(out)
		if m == nil {
			t.Fatalf("ping %s: no RTT summary in %q", dst, out)
		}
		ms, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(ms * float64(time.Millisecond))
	}
	check := func(d, atLeast, below time.Duration) {
		t.Helper()
		for _, tg := range []struct{ family, dst string }{{"-6", InetAddr6.String()}, {"-4", InetAddr4.String()}} {
			if rtt := minRTT(tg.family, tg.dst); rtt < atLeast || rtt >= below {
				t.Errorf("target delay %v: echo to %s took %v at best, want %v..%v", d, tg.dst, rtt, atLeast, below)
			}
		}
	}
	check(0, 0, 20*time.Millisecond)
	if err := l.DelayTargets(ctx, 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	check(40*time.Millisecond, 40*time.Millisecond, time.Second)
	if err := l.DelayTargets(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	check(100*time.Millisecond, 100*time.Millisecond, time.Second)
}

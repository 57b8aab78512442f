package gcpace

import (
	"errors"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestRuleLimit(t *testing.T) {
	r := Rule{Ratio: 1.8, Headroom: 768 << 20}
	for _, c := range []struct {
		live uint64
		want int64
	}{
		{0, 768 << 20},                  // nothing live: the floor
		{100 << 20, 868 << 20},          // small heap: live + headroom
		{960 << 20, 1728 << 20},         // where the two meet: 1.8 x 960 = 960 + 768
		{2000 << 20, 3600 << 20},        // large heap: the ratio
		{math.MaxUint64, math.MaxInt64}, // no overflow
	} {
		if got := r.Limit(c.live); got != c.want {
			t.Errorf("Limit(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}

func TestRuleRefused(t *testing.T) {
	for _, r := range []Rule{{Ratio: 1}, {Ratio: 0.5}, {Ratio: math.NaN()}, {Ratio: math.Inf(1)}} {
		if _, err := start(r, func(string) string { return "" }, nil); err == nil {
			t.Errorf("start(%+v) accepted", r)
		}
	}
}

func settingsLimit() int64 { _, l := settings(); return l }

// settings reads GOGC and the memory limit without changing them.
func settings() (percent int, limit int64) {
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return percent, debug.SetMemoryLimit(-1)
}

func TestOperatorEnvironmentWins(t *testing.T) {
	before, beforeLimit := settings()
	for _, name := range []string{"GOGC", "GOMEMLIMIT"} {
		env := func(k string) string {
			if k == name {
				return "200"
			}
			return ""
		}
		if p, err := start(FullTables, env, nil); !errors.Is(err, ErrOperatorSet) || p != nil {
			t.Errorf("with %s set: Start = %v, %v; want ErrOperatorSet", name, p, err)
		}
		if pc, l := settings(); pc != before || l != beforeLimit {
			t.Errorf("with %s set the collector changed: GOGC %d -> %d, limit %d -> %d", name, before, pc, beforeLimit, l)
		}
	}
}

// TestPacerFollowsLiveHeap runs real collections: after each, the limit
// must be the rule's for the live heap that collection found, and Stop
// must give the collector back its settings.
func TestPacerFollowsLiveHeap(t *testing.T) {
	before, beforeLimit := settings()
	rule := Rule{Ratio: 1.5, Headroom: 8 << 20}
	applied := make(chan int64, 16)
	p, err := start(rule, func(string) string { return "" }, applied)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if pc, _ := settings(); pc != -1 {
		t.Fatalf("GOGC = %d while pacing; want off (-1)", pc)
	}
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	// collect runs a collection and returns the limit the pacer set after
	// it. The runtime may collect on its own as well, so a value from an
	// earlier cycle is drained first, and the live heap compared within
	// 1 MiB (the test allocates little besides its ballast).
	collect := func(what string) int64 {
		t.Helper()
		for len(applied) > 0 {
			<-applied
		}
		runtime.GC()
		select {
		case got := <-applied:
			metrics.Read(live)
			now := live[0].Value.Uint64()
			lo, hi := rule.Limit(now-min(now, 1<<20)), rule.Limit(now+1<<20)
			if got < lo || got > hi {
				t.Fatalf("%s: limit %d; the rule gives %d-%d for the live heap %d +- 1 MiB", what, got, lo, hi, now)
			}
			p.mu.Lock() // afterCollection sets both under it
			set, runtimeLimit := p.limit, settingsLimit()
			p.mu.Unlock()
			if runtimeLimit != set {
				t.Fatalf("%s: the runtime's limit is %d; the pacer set %d", what, runtimeLimit, set)
			}
			return got
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no limit set within 10 s of a collection", what)
		}
		return 0
	}
	small := collect("first collection")
	// 64 MiB kept live: the ratio (1.5 x) now exceeds live + 8 MiB.
	ballast := make([][]byte, 64)
	for i := range ballast {
		ballast[i] = make([]byte, 1<<20)
		ballast[i][0] = byte(i)
	}
	large := collect("with 64 MiB live")
	if large < small+int64(float64(64<<20)*rule.Ratio)*9/10 {
		t.Errorf("limit %d with 64 MiB more live, %d before: it did not follow the live heap", large, small)
	}
	runtime.KeepAlive(ballast)
	if _, n := p.Limit(); n < 2 {
		t.Errorf("%d collections paced; want at least 2", n)
	}
	p.Stop()
	if pc, l := settings(); pc != before || l != beforeLimit {
		t.Errorf("after Stop: GOGC %d, limit %d; want %d and %d as before", pc, l, before, beforeLimit)
	}
}

package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/health"
)

// TestFlappingReasonNamesBackoff: the first worsening gives the plain
// reason; a worsening soon after the return, whose hold-down doubled, says
// so with the new hold-down, so the event shows the backoff.
func TestFlappingReasonNamesBackoff(t *testing.T) {
	f := &flapper{cfg: testConfig(t), now: t0.Add(time.Minute)}
	step := func(v health.Verdict) Decision {
		x, _ := f.step(v).Decision("isp-a")
		return x
	}
	step(health.VerdictUp)
	if d := step(health.VerdictDown); d.State != StateDown || strings.Contains(d.Reason, "hold-down") {
		t.Fatalf("first worsening: %s %q; want down with the plain reason", d.State, d.Reason)
	}
	f.now = f.now.Add(10 * time.Second)
	if d := step(health.VerdictUp); d.State != StateUp {
		t.Fatalf("after the 10s hold-down: %s; want up", d.State)
	}
	f.now = f.now.Add(time.Second)
	d := step(health.VerdictDown)
	if want := "probes say down; flapping: hold-down 20s before it may return"; d.State != StateDown || d.Reason != want {
		t.Fatalf("second worsening: %s %q; want down, %q", d.State, d.Reason, want)
	}
}

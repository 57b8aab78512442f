package controller

import (
	"strings"
	"testing"
	"time"
)

// TestHeldDownCauseInReason: an uplink whose sessions are all down, one of
// them held down by the speaker for max-prefix, goes down with a reason
// that names the neighbor and the cause, which the event carries; without
// a hold-down the reason stays the plain one.
func TestHeldDownCauseInReason(t *testing.T) {
	cfg := testConfig(t)
	o := obsAllUp(t0.Add(time.Minute))
	a := o.Uplinks["isp-a"]
	a.Established = 0
	a.HeldDown = []string{"2001:db8:1000:1::1: max-prefix exceeded: more than 20; retry at 2026-11-26T12:06:00Z"}
	o.Uplinks["isp-a"] = a
	d := Decide(cfg, o)
	dec := d.Uplinks[0]
	if dec.Uplink != "isp-a" || dec.State != StateDown {
		t.Fatalf("isp-a with every session down: %s; want down", summary(d))
	}
	want := "no BGP session established; held down: 2001:db8:1000:1::1: max-prefix exceeded: more than 20"
	if !strings.HasPrefix(dec.Reason, want) {
		t.Errorf("reason %q; want it to start with %q", dec.Reason, want)
	}

	a.HeldDown = nil
	o.Uplinks["isp-a"] = a
	if r := Decide(cfg, o).Uplinks[0].Reason; strings.Contains(r, "held down") {
		t.Errorf("reason %q without a hold-down; want no hold-down named", r)
	}
}

// TestHeldDownEvent: the loop turns a speaker's held-down session into the
// uplink's observation, so the down event names the cause.
func TestHeldDownEvent(t *testing.T) {
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	waitFor(t, "announced", func() (bool, string) { st, _, _ := r.sp.snapshot(); return len(st) == 3, "" })
	r.sp.mu.Lock()
	for i := range r.sp.sessions {
		if r.sp.sessions[i].Uplink == "isp-c" {
			r.sp.sessions[i].State = "idle"
			r.sp.sessions[i].HeldDown = "max-prefix exceeded: more than 20; retry at 2026-11-26T12:06:00Z"
		}
	}
	r.sp.mu.Unlock()
	r.sp.changed <- struct{}{}
	waitFor(t, "the down event of isp-c names the max-prefix hold-down", func() (bool, string) {
		var got []string
		for _, e := range r.loop.Events(0, 0) {
			if e.Uplink == "isp-c" && e.To == StateDown && strings.Contains(e.Reason, "held down: ") && strings.Contains(e.Reason, "max-prefix exceeded: more than 20") {
				return true, ""
			}
			got = append(got, e.Uplink+": "+e.Reason)
		}
		return false, strings.Join(got, " | ")
	})
}

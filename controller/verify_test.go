package controller

import (
	"context"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"
)

// invalidatingEgress is fakeEgress counting Invalidate calls.
type invalidatingEgress struct {
	*fakeEgress
	invalidated int
}

func (e *invalidatingEgress) Invalidate() { e.invalidated++ }

// recordingProbeTables counts Set and Invalidate calls.
type recordingProbeTables struct{ sets, invalidated int }

func (p *recordingProbeTables) Set(context.Context, []routing.ProbeTable) (routing.ProbeState, error) {
	p.sets++
	return routing.ProbeState{}, nil
}

func (p *recordingProbeTables) Invalidate() { p.invalidated++ }

// TestVerifyOnResyncAndCarrierOnly: the appliers that skip unchanged work
// are told to read the kernel again on the first pass, a resync after the
// last time, and on the pass after a carrier change; not on the passes
// events cause in between. The loop also wakes itself when the next
// verification is due, however many passes ran since.
func TestVerifyOnResyncAndCarrierOnly(t *testing.T) {
	cfg := loopConfig(t)
	cfg.Controller.Resync = 30 * time.Second
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	eg := &invalidatingEgress{fakeEgress: &fakeEgress{}}
	pt := &recordingProbeTables{}
	l := New(cfg, Deps{Speaker: newFakeSpeaker(t, cfg), Egress: eg, ProbeTables: pt, Health: newFakeHealth(cfg), Now: func() time.Time { return now }})
	ctx := context.Background()
	step := func(at time.Duration, want int, why string) time.Time {
		t.Helper()
		now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).Add(at)
		before := pt.sets
		next := l.pass(ctx)
		if pt.sets != before+1 {
			t.Fatalf("at %v: ProbeTables.Set called %d times in a pass, want 1", at, pt.sets-before)
		}
		if pt.invalidated != want || eg.invalidated != want {
			t.Fatalf("at %v (%s): invalidated probe tables %d, egress %d times; want %d", at, why, pt.invalidated, eg.invalidated, want)
		}
		return next
	}
	step(0, 1, "first pass")
	step(time.Second, 1, "an event pass")
	l.SetCarrier("eth-a", true)
	step(2*time.Second, 2, "carrier first reported")
	step(3*time.Second, 2, "carrier unchanged")
	l.SetCarrier("eth-a", false)
	step(4*time.Second, 3, "carrier lost")
	step(33*time.Second, 3, "29 s after the last verification")
	next := step(34*time.Second, 4, "a resync after the last verification")
	if want := now.Add(30 * time.Second); next.After(want) {
		t.Fatalf("next pass at %v; want by %v (a resync after this verification)", next, want)
	}
	next = step(50*time.Second, 4, "an event pass")
	if want := now.Add(14 * time.Second); next.After(want) {
		t.Fatalf("next pass at %v; want by %v, the next verification, not a resync after this event pass", next, want)
	}
}

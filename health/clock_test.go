package health

import (
	"sync"
	"time"
)

// fakeClock moves only when Advance is called. Its timers behave like
// time.Timer: they fire once when the clock reaches their time, and a Reset
// or Stop discards a value not yet received.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	f *fakeClock
	c chan time.Time // capacity 1; drained whenever the timer is armed

	// Guarded by f.mu.
	when  time.Time
	armed bool
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock by d and fires the timers that are due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.fireLocked()
}

// nextTimer returns the earliest time an armed timer fires at, if any.
func (f *fakeClock) nextTimer() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Time
	found := false
	for _, t := range f.timers {
		if t.armed && (!found || t.when.Before(next)) {
			next, found = t.when, true
		}
	}
	return next, found
}

func (f *fakeClock) fireLocked() {
	for _, t := range f.timers {
		if t.armed && !t.when.After(f.now) {
			t.armed = false
			t.c <- t.when // never blocks: drained when armed, sent once
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drainLocked()
	t.when, t.armed = t.f.now.Add(d), true
	t.f.fireLocked()
}

func (t *fakeTimer) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drainLocked()
	t.armed = false
}

func (t *fakeTimer) drainLocked() {
	select {
	case <-t.c:
	default:
	}
}

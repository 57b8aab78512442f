package health

import "time"

// Clock is the time source of a Monitor; tests inject a fake one to drive
// the real scheduler (see schedule) in simulated time.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now (at once if d is
	// not positive), like time.NewTimer.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of time.Timer a Monitor uses. As with time.Timer since
// Go 1.23, no value sent before a Reset or Stop is received after it.
type Timer interface {
	C() <-chan time.Time
	// Reset makes the timer fire d from now (at once if d is not
	// positive), whether or not it fired or was stopped before.
	Reset(d time.Duration)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }

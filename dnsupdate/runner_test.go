package dnsupdate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
	"github.com/multihomed/multihomed/routing"
)

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, backoff(time.Second, 10*time.Second, n))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("backoff = %v, want %v", got, want)
	}
}

// startRunner runs r until the test ends. Backoffs are short so retries
// happen within the test's bounded waits.
func startRunner(t *testing.T, u *Updater) *Runner {
	t.Helper()
	r := NewRunner(u, RunnerOptions{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// failing waits until r has failed at least n times in a row with sentinel.
func failing(t *testing.T, r *Runner, sentinel error, n int) {
	t.Helper()
	testenv.Eventually(t, "runner retrying", 10*time.Second, func() (bool, string) {
		s := r.Status()
		return s.Failures >= n && errors.Is(s.LastErr, sentinel) && !s.Converged, statusString(s)
	})
}

func converged(t *testing.T, r *Runner, want map[string][]netip.Addr) {
	t.Helper()
	testenv.Eventually(t, "runner converged", 10*time.Second, func() (bool, string) {
		s := r.Status()
		if !s.Converged || s.LastErr != nil || s.Failures != 0 {
			return false, statusString(s)
		}
		for _, h := range s.Hosts {
			if !h.Known || !slices.Equal(h.Published, routing.AddrSet(want[h.Name])) {
				return false, statusString(s)
			}
		}
		return true, ""
	})
}

func statusString(s Status) string {
	return fmt.Sprintf("hosts %+v converged=%v failures=%d err=%v", s.Hosts, s.Converged, s.Failures, s.LastErr)
}

func TestRunnerConverges(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	r := startRunner(t, newUpdater(t, "site.example", b.Addr, labSecret))
	for _, want := range []map[string][]netip.Addr{
		{"www": {addrA, addrB}, "api": {addrAPI}},
		{"www": {addrB}, "api": {addrAPI}},
		{"www": {addrA, addrB}},
	} {
		r.SetDesired(want)
		converged(t, r, want)
		if s := served(t, b, "www.site.example."); !slices.Equal(s, routing.AddrSet(want["www"])) {
			t.Errorf("server holds %v, want %v", s, want["www"])
		}
	}
}

// TestRunnerBadKeyThenFixed: the server does not accept our key; the runner
// reports it, keeps retrying with the desired state, and converges once the
// server is given our key.
func TestRunnerBadKeyThenFixed(t *testing.T) {
	dir := t.TempDir()
	b := startBIND(t, dir, netip.MustParseAddrPort("127.0.0.1:0"), wrongSecret)
	r := startRunner(t, newUpdater(t, "site.example", b.Addr, labSecret))
	want := map[string][]netip.Addr{"www": {addrA, addrB}}
	r.SetDesired(want)
	failing(t, r, ErrBadKey, 3)
	if s := r.Status(); !slices.Equal(s.Hosts[0].Desired, routing.AddrSet(want["www"])) || s.NextRetry.IsZero() {
		t.Errorf("while failing: desired %v, next retry %v", s.Hosts[0].Desired, s.NextRetry)
	}

	b.Close()
	b = startBIND(t, dir, b.Addr, labSecret)
	converged(t, r, want)
	if s := served(t, b, "www.site.example."); !slices.Equal(s, routing.AddrSet(want["www"])) {
		t.Errorf("server holds %v, want %v", s, want["www"])
	}
}

// TestRunnerServerDownThenUp: nothing listens at first; once BIND starts on
// that address the runner converges without a new SetDesired.
func TestRunnerServerDownThenUp(t *testing.T) {
	testenv.Need(t, "named", "dig")
	probe := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	addr := probe.Addr // a port known to be free for named once probe stops
	probe.Close()

	r := startRunner(t, newUpdater(t, "site.example", addr, labSecret))
	want := map[string][]netip.Addr{"www": {addrA}, "api": {addrAPI}}
	r.SetDesired(want)
	failing(t, r, ErrUnreachable, 3)

	b := startBIND(t, "", addr, labSecret)
	converged(t, r, want)
	if s := served(t, b, "api.site.example."); !slices.Equal(s, []netip.Addr{addrAPI}) {
		t.Errorf("server holds %v", s)
	}
}

func TestRunnerZoneRefused(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	r := startRunner(t, newUpdater(t, "static.example", b.Addr, labSecret))
	r.SetDesired(map[string][]netip.Addr{"www": {addrA}})
	failing(t, r, ErrRefused, 2)
	// The read succeeded, so what the server holds is known: nothing.
	for _, h := range r.Status().Hosts {
		if !h.Known || len(h.Published) != 0 {
			t.Errorf("%s: known %v, published %v; want known and empty", h.Name, h.Known, h.Published)
		}
	}
}

// TestRunnerSetDesiredUnchanged: handing over the state already applied
// does not wake the runner: no attempt, no UPDATE.
func TestRunnerSetDesiredUnchanged(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	u := newUpdater(t, "site.example", b.Addr, labSecret)
	updates := countUpdates(u)
	r := startRunner(t, u)
	want := map[string][]netip.Addr{"www": {addrA}}
	r.SetDesired(want)
	converged(t, r, want)
	<-r.Changed() // the attempt that converged
	attempt := r.Status().LastAttempt
	r.SetDesired(map[string][]netip.Addr{"www": {addrA, addrA}}) // same set
	select {
	case <-r.Changed():
		t.Errorf("an unchanged desired state caused an attempt")
	case <-time.After(300 * time.Millisecond): // a woken runner attempts within milliseconds
	}
	if r.Status().LastAttempt != attempt || updates.Load() != 1 {
		t.Errorf("attempts after an unchanged state: updates %d", updates.Load())
	}
}

// fakeClock hands the runner's waits to the test: each After call is
// reported with its duration, and fires only when the test says so.
type fakeClock struct{ waits chan fakeWait }

type fakeWait struct {
	d    time.Duration
	fire chan time.Time
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	w := fakeWait{d: d, fire: make(chan time.Time, 1)}
	c.waits <- w
	return w.fire
}

// TestRunnerBackoffSchedule drives the runner with a fake clock against an
// address where nothing listens: each failure waits twice as long as the
// one before, up to the limit, the desired state is kept throughout, and a
// new desired state is tried at once without waiting for the backoff.
func TestRunnerBackoffSchedule(t *testing.T) {
	u := newUpdater(t, "site.example", netip.MustParseAddrPort("127.0.0.1:1"), labSecret)
	clock := &fakeClock{waits: make(chan fakeWait, 16)} // buffered: Run never blocks on the test
	r := NewRunner(u, RunnerOptions{InitialBackoff: time.Second, MaxBackoff: 4 * time.Second, After: clock.After})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	next := func() fakeWait {
		t.Helper()
		select {
		case w := <-clock.waits:
			return w
		case <-time.After(10 * time.Second):
			t.Fatal("runner did not schedule a retry")
			return fakeWait{}
		}
	}
	want := map[string][]netip.Addr{"www": {addrA}}
	r.SetDesired(want)
	var got []time.Duration
	for range 4 {
		w := next()
		got = append(got, w.d)
		s := r.Status()
		if !errors.Is(s.LastErr, ErrUnreachable) || !slices.Equal(s.Hosts[0].Desired, want["www"]) {
			t.Fatalf("while retrying: %s", statusString(s))
		}
		w.fire <- time.Time{}
	}
	if wantD := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(got, wantD) {
		t.Errorf("backoff schedule %v, want %v", got, wantD)
	}
	// A new state does not wait for the pending 4s retry.
	_ = next() // the 5th wait, never fired
	r.SetDesired(map[string][]netip.Addr{"www": {addrB}})
	if w2 := next(); w2.d != 4*time.Second || r.Status().Failures != 6 {
		t.Errorf("after a new state: wait %s, failures %d; want a 6th attempt at once", w2.d, r.Status().Failures)
	}
}

package dnsupdate

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/multihomed/multihomed/routing"
)

// Log attribute keys.
const (
	logKeyZone     = "zone"
	logKeyAttempts = "attempts"
	logKeyRetryIn  = "retry_in"
	logKeyHost     = "host"
	logKeyError    = "error"
	logKeyAddrs    = "addrs"
)

// RunnerOptions tune a Runner. Zero fields take the defaults below.
type RunnerOptions struct {
	// InitialBackoff is the wait after the first failure (1s); each further
	// failure doubles it up to MaxBackoff (1m).
	InitialBackoff, MaxBackoff time.Duration
	// Resync is how often a converged runner reads the server again to
	// repair records someone else changed (5m; negative disables).
	Resync time.Duration
	// After is the clock (time.After when nil); tests inject their own.
	After func(time.Duration) <-chan time.Time
	// Now stamps attempts (time.Now when nil).
	Now func() time.Time
	// Logger receives one line per failed attempt and per change made
	// (slog.Default when nil).
	Logger *slog.Logger
}

// Status is what a Runner reports; see routing.DNSStatus, where the type
// lives so that the controller can name it without linking the DNS
// library.
type Status = routing.DNSStatus

// HostStatus is one host's records; see routing.DNSHostStatus.
type HostStatus = routing.DNSHostStatus

// Runner converges the zone to the latest desired state: SetDesired hands a
// state over without blocking, Run applies it with the Updater and retries
// with backoff until the server holds it. Only the latest state matters:
// states handed over during an attempt are merged into the next one.
// SetDesired, Status and Changed are safe for concurrent use; Run is called
// once.
type Runner struct {
	u       *Updater
	opts    RunnerOptions
	log     *slog.Logger
	wake    chan struct{} // capacity 1: SetDesired never blocks, bursts merge
	changed chan struct{} // capacity 1: signalled after each attempt

	// mu guards the fields below.
	mu      sync.Mutex
	desired map[string][]netip.Addr // nil until the first SetDesired
	status  Status
}

// NewRunner returns a runner applying desired states with u.
func NewRunner(u *Updater, opts RunnerOptions) *Runner {
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.MaxBackoff < opts.InitialBackoff {
		opts.MaxBackoff = opts.InitialBackoff
	}
	if opts.Resync == 0 {
		opts.Resync = 5 * time.Minute
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Runner{u: u, opts: opts, log: log.With(logKeyZone, u.Zone()), wake: make(chan struct{}, 1), changed: make(chan struct{}, 1)}
	r.status.Zone = u.Zone()
	for _, name := range u.Hosts() {
		r.status.Hosts = append(r.status.Hosts, HostStatus{Name: name})
	}
	return r
}

// SetDesired hands over the desired AAAA sets, keyed by host name as
// configured (see Updater.Set). It copies desired, never blocks, and does
// not wake the runner when nothing changed.
func (r *Runner) SetDesired(desired map[string][]netip.Addr) {
	d := make(map[string][]netip.Addr, len(desired))
	for k, v := range desired {
		d[k] = routing.AddrSet(v)
	}
	r.mu.Lock()
	same := r.desired != nil && maps.EqualFunc(r.desired, d, slices.Equal[[]netip.Addr])
	if !same {
		r.desired = d
		r.status.Converged = false
		for i := range r.status.Hosts {
			r.status.Hosts[i].Desired = d[r.status.Hosts[i].Name]
		}
	}
	r.mu.Unlock()
	if !same {
		signal(r.wake)
	}
}

// Status returns a copy of the current status.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Hosts = slices.Clone(s.Hosts)
	return s
}

// Changed is signalled (level-triggered: one pending signal at most) after
// every attempt, for whoever publishes Status as events and metrics.
func (r *Runner) Changed() <-chan struct{} { return r.changed }

// Run applies desired states until ctx ends, then returns nil. Nothing is
// sent before the first SetDesired.
func (r *Runner) Run(ctx context.Context) error {
	var retry, resync <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-retry:
		case <-resync:
		}
		retry, resync = nil, nil
		r.mu.Lock()
		desired := r.desired
		r.mu.Unlock()
		if desired == nil {
			continue
		}
		published, err := r.u.Set(ctx, desired)
		if ctx.Err() != nil {
			return nil
		}
		delay := r.record(desired, published, err)
		switch {
		case err != nil:
			retry = r.opts.After(delay)
		case r.opts.Resync > 0:
			resync = r.opts.After(r.opts.Resync)
		}
		signal(r.changed)
	}
}

// record stores the outcome of one attempt and returns the backoff before
// the next one when it failed.
func (r *Runner) record(desired, published map[string][]netip.Addr, err error) time.Duration {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.status
	s.LastAttempt, s.LastErr = now, err
	for i := range s.Hosts {
		h := &s.Hosts[i]
		if published == nil {
			continue
		}
		p := published[h.Name]
		if h.Known && !slices.Equal(h.Published, p) {
			r.log.Info("dnsupdate: records changed", logKeyHost, h.Name, logKeyAddrs, p)
		}
		h.Published, h.Known = p, true
	}
	// A SetDesired during the attempt leaves r.desired newer than what was
	// applied: then the attempt did not converge, and the pending wake-up
	// brings the next one.
	current := maps.EqualFunc(r.desired, desired, slices.Equal[[]netip.Addr])
	if err == nil {
		if s.Failures > 0 {
			r.log.Info("dnsupdate: converged after failures", logKeyAttempts, s.Failures+1)
		}
		s.Failures, s.NextRetry, s.Converged = 0, time.Time{}, current
		return 0
	}
	s.Failures++
	s.Converged = false
	delay := backoff(r.opts.InitialBackoff, r.opts.MaxBackoff, s.Failures)
	s.NextRetry = now.Add(delay)
	r.log.Warn("dnsupdate: update failed; desired records kept, retrying", logKeyError, err, logKeyAttempts, s.Failures, logKeyRetryIn, delay)
	return delay
}

// backoff is the wait after the n-th consecutive failure (n >= 1): initial
// doubled n-1 times, capped at limit.
func backoff(initial, limit time.Duration, n int) time.Duration {
	d := initial
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

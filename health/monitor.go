package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// Log attribute keys.
const (
	logKeyUplink  = "uplink"
	logKeyTarget  = "target"
	logKeyVerdict = "verdict"
	logKeyFrom    = "from"
	logKeyReason  = "reason"
	logKeyError   = "error"
)

// Prober sends one probe. Probe returns the round-trip time of a successful
// probe, or an error saying what failed. It must return by the time ctx is
// done (the target's timeout). A Prober is used by one goroutine at a time;
// if it also implements io.Closer, the Monitor closes it when it is done
// with it: when Run returns, when a committed Reconfiguration replaces it,
// or when a Reconfiguration is discarded or refused.
type Prober interface {
	Probe(ctx context.Context) (time.Duration, error)
}

// Clock is the time source of a Monitor; tests inject a fake one.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of time.Ticker a Monitor uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time                   { return time.Now() }
func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Uplink is one uplink a Monitor probes.
type Uplink struct {
	// Name identifies the uplink in snapshots.
	Name string
	// Device is the uplink's network interface: probe sockets bind to it,
	// and its addresses are the default probe sources. Its carrier is the
	// controller's business, not the Monitor's.
	Device string
	// Health is the uplink's health block, with defaults applied and valid.
	Health Config
}

// Options configure a Monitor.
type Options struct {
	// Uplinks to probe, with unique names; none makes an idle Monitor
	// until a Reconfiguration gives it some.
	Uplinks []Uplink
	// NewProber builds the prober of one target; nil means the real probers
	// (NewProber in this package).
	NewProber func(u Uplink, t Target) (Prober, error)
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnProbe, when set, is called after every probe with its outcome (err
	// nil: a reply after rtt). It runs with the Monitor's lock held: it must
	// be quick, must not block and must not call the Monitor (the metrics
	// histogram uses it).
	OnProbe func(uplink, target string, rtt time.Duration, err error)
}

// Monitor probes every target of every uplink and keeps one verdict per
// uplink, judged on the probe results alone. Snapshot and Changed are safe
// for concurrent use and never block on probing.
type Monitor struct {
	clock     Clock
	log       *slog.Logger
	onProbe   func(uplink, target string, rtt time.Duration, err error)
	newProber func(u Uplink, t Target) (Prober, error)
	changed   chan struct{}
	kick      chan struct{}         // wakes the scheduler; capacity 1
	reconf    chan *Reconfiguration // Commit to the running Run
	runDone   chan struct{}         // closed when Run has returned

	mu      sync.Mutex
	uplinks []*uplinkTracker
	gen     *generation // the probers and schedules of uplinks
	epoch   uint64      // counts installed configurations
	seq     uint64
	started bool
	stopped bool
}

// generation is what probes one configuration: the probers and schedules
// of every target. Run replaces it as a whole when a reconfiguration is
// committed; the uplinks' trackers (verdicts, windows) outlive it where
// the uplink's configuration did not change.
type generation struct {
	probers [][]Prober // [uplink][target]
	scheds  []*targetSched
}

func (g *generation) close() {
	for _, ps := range g.probers {
		closeAll(ps)
	}
}

// NewMonitor checks opts and builds the probers. It opens no socket: probers
// open theirs on first use, so a missing device at start makes probes fail
// rather than the Monitor. With no uplinks the Monitor idles until a
// reconfiguration gives it some.
func NewMonitor(opts Options) (*Monitor, error) {
	m := &Monitor{
		clock:     opts.Clock,
		log:       opts.Logger,
		onProbe:   opts.OnProbe,
		newProber: opts.NewProber,
		changed:   make(chan struct{}, 1),
		kick:      make(chan struct{}, 1),
		reconf:    make(chan *Reconfiguration),
		runDone:   make(chan struct{}),
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.newProber == nil {
		m.newProber = NewProber
	}
	r, err := m.build(opts.Uplinks, nil)
	if err != nil {
		return nil, err
	}
	m.uplinks, m.gen = r.uplinks, r.gen
	return m, nil
}

// build checks uplinks and builds their trackers, probers and schedules.
// An uplink of old with the same name, device and health configuration
// keeps its tracker (verdict, windows); every prober is new.
func (m *Monitor) build(uplinks []Uplink, old map[string]*uplinkTracker) (*Reconfiguration, error) {
	r := &Reconfiguration{m: m, gen: &generation{}}
	seen := map[string]bool{}
	for i, u := range uplinks {
		if u.Name == "" || seen[u.Name] {
			return nil, fmt.Errorf("health: uplinks[%d]: name %q is empty or repeated; give each uplink a unique name", i, u.Name)
		}
		seen[u.Name] = true
		cfg := u.Health
		if errs := cfg.Validate(); len(errs) > 0 {
			return nil, fmt.Errorf("health: uplink %s: %w", u.Name, errors.Join(errs...))
		}
	}
	for _, u := range uplinks {
		cfg := u.Health
		var ps []Prober
		for j, t := range cfg.Targets {
			p, err := m.newProber(u, t)
			if err != nil {
				closeAll(ps)
				r.gen.close()
				return nil, fmt.Errorf("health: uplink %s: targets[%d] %s: %w", u.Name, j, t, err)
			}
			ps = append(ps, p)
		}
		r.gen.probers = append(r.gen.probers, ps)
		ut := old[u.Name]
		if ut != nil && ut.device == u.Device && reflect.DeepEqual(ut.cfg, cfg) {
			r.kept = append(r.kept, u.Name)
		} else {
			// Another device or other targets and thresholds: the old
			// windows measured something else.
			ut = newUplinkTracker(u.Name, u.Device, cfg)
		}
		r.uplinks = append(r.uplinks, ut)
		for j, tt := range ut.targets {
			s := &targetSched{u: ut, tt: tt, p: ps[j]}
			if ip, ok := ps[j].(*icmpProber); ok {
				s.echo = ip
			} else {
				s.work = make(chan struct{}, 1)
			}
			r.gen.scheds = append(r.gen.scheds, s)
		}
	}
	return r, nil
}

func closeAll(ps []Prober) {
	for _, p := range ps {
		if c, ok := p.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// Run probes until ctx is done, then closes the probers and returns once
// every goroutine it started has ended. It returns ctx's cause. Run may be
// called once.
//
// One scheduler goroutine drives every target of every uplink from one
// timer (see schedule). ICMP echo requests are sent by the scheduler itself
// and their replies read by one goroutine per socket; other probers (TCP,
// HTTP, DNS, or any Prober from Options.NewProber) run in one goroutine per
// target that waits for the scheduler's go-ahead. A committed
// Reconfiguration stops all of them, closes their probers and starts the
// new ones.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("health: Monitor.Run called twice")
	}
	m.started = true
	g := m.gen
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.stopped = true
		m.mu.Unlock()
		close(m.runDone)
	}()

	for {
		r := m.runGeneration(ctx, g)
		if r == nil {
			break
		}
		m.mu.Lock()
		err := m.installLocked(r)
		g = m.gen
		m.mu.Unlock()
		r.applied <- err
	}
	return context.Cause(ctx)
}

// runGeneration probes with g until ctx is done (it returns nil) or a
// reconfiguration arrives (it returns it). Either way every goroutine it
// started has ended and g's probers are closed when it returns.
func (m *Monitor) runGeneration(ctx context.Context, g *generation) *Reconfiguration {
	gctx, stop := context.WithCancel(ctx)
	var wg, readers sync.WaitGroup
	for _, s := range g.scheds {
		if s.echo == nil {
			wg.Go(func() { m.runWorker(gctx, s) })
		}
	}
	wg.Go(func() { m.schedule(gctx, g, &readers) })
	var r *Reconfiguration
	for r == nil && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case r = <-m.reconf:
			// Only Run installs while it runs, so a reconfiguration that
			// is current now stays current until it is installed; a stale
			// one is refused before anything stops.
			m.mu.Lock()
			stale := r.epoch != m.epoch
			m.mu.Unlock()
			if stale {
				r.gen.close()
				r.applied <- errStale
				r = nil
			}
		}
	}
	stop()
	wg.Wait()
	// The scheduler has stopped, so no reader starts any more; closing the
	// sockets ends the readers.
	g.close()
	readers.Wait()
	return r
}

var errStale = errors.New("health: the monitor was reconfigured after this reconfiguration was prepared; prepare it again")

// Reconfiguration is a new set of uplinks prepared for a Monitor: checked,
// with its probers built. Commit puts it in force; Discard drops it.
type Reconfiguration struct {
	m       *Monitor
	epoch   uint64 // the Monitor's configuration it was prepared against
	uplinks []*uplinkTracker
	gen     *generation
	kept    []string // uplinks whose tracker carries over
	applied chan error
	done    bool
}

// Prepare checks uplinks and builds their probers, without changing what
// the Monitor probes: a reload can refuse it (Discard) until every other
// part of the configuration is accepted too, then Commit it. An uplink
// whose name, device and health block are unchanged keeps its verdict and
// its measurement windows across the change; a changed uplink starts over
// (verdict unknown, the controller keeps its last state meanwhile); a
// removed uplink disappears from snapshots. Calls to Prepare and Commit
// must not interleave with another reconfiguration's.
func (m *Monitor) Prepare(uplinks []Uplink) (*Reconfiguration, error) {
	m.mu.Lock()
	old := make(map[string]*uplinkTracker, len(m.uplinks))
	for _, u := range m.uplinks {
		old[u.name] = u
	}
	epoch := m.epoch
	m.mu.Unlock()
	r, err := m.build(uplinks, old)
	if err != nil {
		return nil, err
	}
	r.epoch = epoch
	return r, nil
}

// Kept names the uplinks whose verdict and windows carry over.
func (r *Reconfiguration) Kept() []string { return r.kept }

// Discard closes the prepared probers. It does nothing after Commit.
func (r *Reconfiguration) Discard() {
	if !r.done {
		r.done = true
		r.gen.close()
	}
}

// Commit puts r in force. With Run going, it hands r to Run and waits
// until Run has stopped the old probes (in-flight TCP, HTTP and DNS probes
// end within their timeout) and installed r; the new probes start right
// after. ctx only bounds the wait for Run to take r: once taken, Commit
// reports the outcome whatever ctx does. It fails if r was prepared
// against a configuration that is no longer in force, or the Monitor has
// stopped.
func (r *Reconfiguration) Commit(ctx context.Context) error {
	if r.done {
		return errors.New("health: reconfiguration already committed or discarded")
	}
	r.done = true
	m := r.m
	m.mu.Lock()
	switch {
	case m.stopped:
		m.mu.Unlock()
		r.gen.close()
		return errors.New("health: monitor stopped")
	case !m.started:
		// Run reads m.gen under the lock when it starts: installing here
		// is atomic with respect to that.
		old := m.gen
		err := m.installLocked(r)
		m.mu.Unlock()
		if err == nil {
			old.close()
		}
		return err
	}
	m.mu.Unlock()
	r.applied = make(chan error, 1)
	select {
	case m.reconf <- r:
	case <-m.runDone:
		r.gen.close()
		return errors.New("health: monitor stopped")
	case <-ctx.Done():
		r.gen.close()
		return ctx.Err()
	}
	// Run answers every reconfiguration it takes, after a bounded wait.
	return <-r.applied
}

// installLocked makes r the configuration in force, or closes its probers
// and fails if r is stale. m.mu must be held.
func (m *Monitor) installLocked(r *Reconfiguration) error {
	if r.epoch != m.epoch {
		r.gen.close()
		return errStale
	}
	m.uplinks, m.gen = r.uplinks, r.gen
	m.epoch++
	// The set of uplinks changed: readers of snapshots should look again.
	m.seq++
	select {
	case m.changed <- struct{}{}:
	default:
	}
	return nil
}

// targetSched is the scheduling state of one target. The first fields are
// set by build and then only read.
type targetSched struct {
	u    *uplinkTracker
	tt   *targetTracker
	p    Prober
	echo *icmpProber   // the ICMP prober, sent by the scheduler; or nil
	work chan struct{} // when echo is nil: the scheduler's go-ahead to its worker

	// Guarded by Monitor.mu.
	due      time.Time // next tick: start + k * interval, as time.Ticker
	inflight bool      // a probe is running; probes never overlap
	seq      uint16    // echo sequence number of the probe in flight
	deadline time.Time // when the echo in flight times out
}

// echoSend is one echo request the scheduler sends after a dispatch.
type echoSend struct {
	s   *targetSched
	seq uint16
}

// schedule is the scheduler: it sends every due probe in one wake-up,
// judges echo timeouts, and sleeps until the next tick or timeout. A target
// is due on the ticks of its interval, counted from start; ticks that pass
// while its probe runs are dropped but the next probe starts as soon as it
// ends (like a time.Ticker with its buffered tick).
func (m *Monitor) schedule(ctx context.Context, g *generation, readers *sync.WaitGroup) {
	if len(g.scheds) == 0 {
		<-ctx.Done()
		return
	}
	// With the system clock one timer is reset to the next event. Other
	// clocks offer only tickers: tick at the greatest common divisor of the
	// intervals (timeouts are then judged on those ticks).
	var timer *time.Timer
	var tick <-chan time.Time
	if _, ok := m.clock.(realClock); ok {
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
		tick = timer.C
	} else {
		tk := m.clock.NewTicker(g.tickPeriod())
		defer tk.Stop()
		tick = tk.C()
	}
	now := m.clock.Now()
	m.mu.Lock()
	for _, s := range g.scheds {
		s.due = now
	}
	m.mu.Unlock()
	var sends []echoSend
	for {
		var next time.Time
		sends, next = m.dispatch(now, g, sends[:0])
		for _, e := range sends {
			m.sendEcho(ctx, readers, e)
		}
		if timer != nil {
			timer.Reset(next.Sub(m.clock.Now()))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-m.kick:
		}
		now = m.clock.Now()
	}
}

// dispatch, at now, ends the echoes whose deadline has passed, starts every
// due probe that is not still running, appends the echo requests to send to
// sends, and returns the time of the next event: a tick, or an echo
// deadline. It never returns a time before now for a probe in flight (that
// would spin); a probe that ends after its tick wakes the scheduler itself.
func (m *Monitor) dispatch(now time.Time, g *generation, sends []echoSend) ([]echoSend, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := now.Add(time.Hour)
	for _, s := range g.scheds {
		if s.inflight && s.echo != nil && !now.Before(s.deadline) {
			s.inflight = false
			m.recordLocked(s.u, s.tt, now, 0, fmt.Errorf("echo %v seq %d: %w (%v)",
				s.echo.pin.dst, s.seq, errNoReply, s.tt.target.Timeout))
		}
		if !s.inflight && !now.Before(s.due) {
			s.inflight = true
			s.due = nextTick(s.due, s.tt.target.Interval, now)
			if s.echo != nil {
				s.seq++
				if s.seq == 0 { // 0 is finish's "whatever is in flight"
					s.seq = 1
				}
				s.deadline = now.Add(s.tt.target.Timeout)
				sends = append(sends, echoSend{s, s.seq})
			} else {
				// The worker took the previous go-ahead before it finished,
				// so the channel is empty; never block under the lock.
				select {
				case s.work <- struct{}{}:
				default:
				}
			}
		}
		// A probe in flight past its tick is followed up by finish, which
		// wakes the scheduler; before its tick, the tick is still an event
		// (the probe may well end first).
		if !s.inflight || now.Before(s.due) {
			next = minTime(next, s.due)
		}
		if s.inflight && s.echo != nil {
			next = minTime(next, s.deadline)
		}
	}
	return sends, next
}

// nextTick returns the first tick after now of the grid due + k*interval.
func nextTick(due time.Time, interval time.Duration, now time.Time) time.Time {
	due = due.Add(interval)
	if !due.After(now) {
		due = due.Add((now.Sub(due)/interval + 1) * interval)
	}
	return due
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// tickPeriod is the greatest common divisor of all targets' intervals.
func (gen *generation) tickPeriod() time.Duration {
	var g time.Duration
	for _, s := range gen.scheds {
		a, b := g, s.tt.target.Interval
		for b != 0 {
			a, b = b, a%b
		}
		g = a
	}
	return g
}

// sendEcho sends one echo request and, for a newly opened socket, starts
// its reader.
func (m *Monitor) sendEcho(ctx context.Context, readers *sync.WaitGroup, e echoSend) {
	opened, err := e.s.echo.sendEcho(e.seq)
	if opened != nil {
		readers.Go(func() {
			e.s.echo.readEchoes(opened,
				func(seq uint16, rtt time.Duration) { m.finish(ctx, e.s, seq, rtt, nil) },
				func(err error) { m.finish(ctx, e.s, 0, 0, err) })
		})
	}
	if err != nil {
		m.finish(ctx, e.s, e.seq, 0, err)
	}
}

// runWorker runs the probes of one target whose prober is not an echo
// prober, each when the scheduler says so.
func (m *Monitor) runWorker(ctx context.Context, s *targetSched) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.work:
		}
		pctx, cancel := context.WithTimeout(ctx, s.tt.target.Timeout)
		rtt, err := s.p.Probe(pctx)
		cancel()
		m.finish(ctx, s, 0, rtt, err)
	}
}

// finish records the result of s's probe in flight. For an echo, seq must
// be the sequence number in flight (0 stands for "whatever is in flight", a
// socket error): a reply after its timeout was judged is ignored. If the
// target's next tick has passed meanwhile, the scheduler is woken to start
// the next probe at once.
func (m *Monitor) finish(ctx context.Context, s *targetSched, seq uint16, rtt time.Duration, err error) {
	if ctx.Err() != nil {
		return // shutting down: a cancelled probe says nothing about the path
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !s.inflight || (s.echo != nil && seq != 0 && seq != s.seq) {
		return
	}
	s.inflight = false
	now := m.clock.Now()
	m.recordLocked(s.u, s.tt, now, rtt, err)
	if !now.Before(s.due) {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

func (m *Monitor) recordLocked(u *uplinkTracker, tt *targetTracker, now time.Time, rtt time.Duration, err error) {
	if m.onProbe != nil {
		m.onProbe(u.name, tt.name, rtt, err)
	}
	if tt.observe(now, rtt, err) {
		m.log.Debug("health: target changed", logKeyUplink, u.name, logKeyTarget, tt.name,
			logKeyVerdict, tt.state.String(), logKeyError, tt.lastErr)
	}
	m.evaluateLocked(u, now)
}

// evaluateLocked re-evaluates u and publishes a change. m.mu must be held.
func (m *Monitor) evaluateLocked(u *uplinkTracker, now time.Time) {
	from := u.verdict
	if !u.evaluate(now) {
		return
	}
	m.seq++
	m.log.Info("health: uplink verdict changed", logKeyUplink, u.name,
		logKeyFrom, from.String(), logKeyVerdict, u.verdict.String(), logKeyReason, u.reasonText())
	// Level-triggered: a pending signal already covers this change.
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Changed returns a channel that receives a value after verdicts change. It
// has capacity one and sends never block: several changes may merge into
// one signal, so read Snapshot after each receive.
func (m *Monitor) Changed() <-chan struct{} { return m.changed }

// Snapshot is the health of every uplink at one moment. It is a copy: the
// caller may keep it and modify it.
type Snapshot struct {
	// Seq counts verdict changes, and committed reconfigurations, since the
	// Monitor was built.
	Seq uint64
	// Uplinks in the order of Options.Uplinks (of the last committed
	// Reconfiguration's uplinks).
	Uplinks []UplinkStatus
}

// Uplink returns the status of the named uplink.
func (s Snapshot) Uplink(name string) (UplinkStatus, bool) {
	for _, u := range s.Uplinks {
		if u.Name == name {
			return u, true
		}
	}
	return UplinkStatus{}, false
}

// UplinkStatus is the verdict of one uplink with its reason and figures.
type UplinkStatus struct {
	Name    string
	Verdict Verdict
	// Since is when Verdict was entered (zero while unknown).
	Since time.Time
	// Reason says why, naming failed targets and the figures that count.
	Reason string
	// TargetsUp of len(Targets) targets are up; TargetsNeeded is min_up.
	TargetsUp     int
	TargetsNeeded int
	// Loss (percent) and RTT over the windows of the up targets (of all
	// targets when none is up), Samples probes in all.
	Loss    float64
	RTTMean time.Duration
	RTTP95  time.Duration
	Samples int
	Targets []TargetStatus
}

// TargetStatus is the state and figures of one target.
type TargetStatus struct {
	// Target is the target's compact form.
	Target string
	State  TargetState
	// Since is when State was entered.
	Since time.Time
	// Loss (percent), RTT and Samples over the target's window.
	Loss    float64
	RTTMean time.Duration
	RTTP95  time.Duration
	Samples int
	// Probes counts every probe sent since start.
	Probes uint64
	// LastError is the error of the last probe, empty if it succeeded.
	LastError string
}

// Snapshot returns the current status of every uplink.
func (m *Monitor) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{Seq: m.seq, Uplinks: make([]UplinkStatus, 0, len(m.uplinks))}
	for _, u := range m.uplinks {
		us := UplinkStatus{
			Name: u.name, Verdict: u.verdict, Since: u.since, Reason: u.reasonText(),
			TargetsUp: u.targetsUp, TargetsNeeded: u.cfg.MinUp,
			Loss: u.loss, RTTMean: u.rttMean, RTTP95: u.rttP95, Samples: u.samples,
		}
		for _, tt := range u.targets {
			var w window
			tt.appendWindow(&w)
			loss, mean, p95 := w.figures()
			us.Targets = append(us.Targets, TargetStatus{
				Target: tt.name, State: tt.state, Since: tt.lastChange,
				Loss: loss, RTTMean: mean, RTTP95: p95, Samples: w.samples,
				Probes: tt.probes, LastError: tt.lastErr,
			})
		}
		s.Uplinks = append(s.Uplinks, us)
	}
	return s
}

package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	logKeyDevice  = "device"
	logKeyError   = "error"
)

// Prober sends one probe. Probe returns the round-trip time of a successful
// probe, or an error saying what failed. It must return by the time ctx is
// done (the target's timeout). A Prober is used by one goroutine at a time;
// if it also implements io.Closer, the Monitor closes it when Run returns.
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

// CarrierWatcher reports the carrier of network links. fib.LinkWatcher
// implements it.
type CarrierWatcher interface {
	// WatchCarrier calls fn with the carrier state of every link when it
	// starts and again on every change, until ctx is done; then it returns
	// nil, or an error if watching failed. fn does not block.
	WatchCarrier(ctx context.Context, fn func(device string, up bool)) error
}

// Uplink is one uplink a Monitor probes.
type Uplink struct {
	// Name identifies the uplink in snapshots and SetSessionUp.
	Name string
	// Device is the uplink's network interface: carrier changes on it mark
	// the uplink down, probe sockets bind to it, and its addresses are the
	// default probe sources.
	Device string
	// Health is the uplink's health block, with defaults applied and valid.
	Health Config
}

// Options configure a Monitor.
type Options struct {
	// Uplinks to probe, at least one, with unique names.
	Uplinks []Uplink
	// NewProber builds the prober of one target; nil means the real probers
	// (NewProber in this package).
	NewProber func(u Uplink, t Target) (Prober, error)
	// Clock defaults to the system clock.
	Clock Clock
	// Carrier, when set, feeds carrier changes of the uplinks' devices.
	Carrier CarrierWatcher
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnProbe, when set, is called after every probe with its outcome (err
	// nil: a reply after rtt). It runs on the probing goroutine: it must be
	// quick and must not block (the metrics histogram uses it).
	OnProbe func(uplink, target string, rtt time.Duration, err error)
}

// Monitor probes every target of every uplink and keeps one verdict per
// uplink. Snapshot, Changed, SetSessionUp and SetCarrier are safe for
// concurrent use and never block on probing.
type Monitor struct {
	clock   Clock
	log     *slog.Logger
	carrier CarrierWatcher
	onProbe func(uplink, target string, rtt time.Duration, err error)
	changed chan struct{}
	probers [][]Prober // [uplink][target]

	mu      sync.Mutex
	uplinks []*uplinkTracker
	seq     uint64
	started bool
}

// NewMonitor checks opts and builds the probers. It opens no socket: probers
// open theirs on first use, so a missing device at start makes probes fail
// rather than the Monitor.
func NewMonitor(opts Options) (*Monitor, error) {
	if len(opts.Uplinks) == 0 {
		return nil, errors.New("health: no uplinks to monitor")
	}
	m := &Monitor{
		clock:   opts.Clock,
		log:     opts.Logger,
		carrier: opts.Carrier,
		onProbe: opts.OnProbe,
		changed: make(chan struct{}, 1),
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	newProber := opts.NewProber
	if newProber == nil {
		newProber = NewProber
	}
	seen := map[string]bool{}
	for i, u := range opts.Uplinks {
		if u.Name == "" || seen[u.Name] {
			return nil, fmt.Errorf("health: uplinks[%d]: name %q is empty or repeated; give each uplink a unique name", i, u.Name)
		}
		seen[u.Name] = true
		cfg := u.Health
		if errs := cfg.Validate(); len(errs) > 0 {
			return nil, fmt.Errorf("health: uplink %s: %w", u.Name, errors.Join(errs...))
		}
		var ps []Prober
		for j, t := range cfg.Targets {
			p, err := newProber(u, t)
			if err != nil {
				closeAll(ps)
				for _, q := range m.probers {
					closeAll(q)
				}
				return nil, fmt.Errorf("health: uplink %s: targets[%d] %s: %w", u.Name, j, t, err)
			}
			ps = append(ps, p)
		}
		m.probers = append(m.probers, ps)
		m.uplinks = append(m.uplinks, newUplinkTracker(u.Name, u.Device, cfg))
	}
	return m, nil
}

func closeAll(ps []Prober) {
	for _, p := range ps {
		if c, ok := p.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// Run probes until ctx is done, then closes the probers and returns once
// every goroutine it started has ended. It returns ctx's error, or the
// carrier watcher's if that failed first. Run may be called once.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("health: Monitor.Run called twice")
	}
	m.started = true
	m.mu.Unlock()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	if m.carrier != nil {
		wg.Go(func() {
			err := m.carrier.WatchCarrier(ctx, m.SetCarrier)
			if err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("health: carrier watcher: %w", err))
			}
		})
	}
	for i, u := range m.uplinks {
		for j, tt := range u.targets {
			wg.Go(func() { m.runTarget(ctx, u, tt, m.probers[i][j]) })
		}
	}
	<-ctx.Done()
	wg.Wait()
	for _, ps := range m.probers {
		closeAll(ps)
	}
	return context.Cause(ctx)
}

// deadlineProber is implemented by probers that can take a deadline instead
// of a context (the ICMP prober). The Monitor then spends no context, timer
// or goroutine per probe; it calls interrupt when stopping.
type deadlineProber interface {
	// probeUntil is Probe with the context's deadline.
	probeUntil(deadline time.Time) (time.Duration, error)
	// interrupt makes the running probe, and every later one, return at
	// once. It is safe to call concurrently with probeUntil.
	interrupt()
}

// runTarget probes one target: once at start, then on every tick. A probe
// never overlaps the previous one on the same target; ticks missed while a
// slow probe runs are dropped, as with time.Ticker.
func (m *Monitor) runTarget(ctx context.Context, u *uplinkTracker, tt *targetTracker, p Prober) {
	tk := m.clock.NewTicker(tt.target.Interval)
	defer tk.Stop()
	dp, fast := p.(deadlineProber)
	if fast {
		stop := context.AfterFunc(ctx, dp.interrupt)
		defer stop()
	}
	for {
		var rtt time.Duration
		var err error
		if fast {
			rtt, err = dp.probeUntil(time.Now().Add(tt.target.Timeout))
		} else {
			pctx, cancel := context.WithTimeout(ctx, tt.target.Timeout)
			rtt, err = p.Probe(pctx)
			cancel()
		}
		if ctx.Err() != nil {
			return // shutting down: a cancelled probe says nothing about the path
		}
		m.record(u, tt, rtt, err)
		select {
		case <-ctx.Done():
			return
		case <-tk.C():
		}
	}
}

func (m *Monitor) record(u *uplinkTracker, tt *targetTracker, rtt time.Duration, err error) {
	if m.onProbe != nil {
		m.onProbe(u.name, tt.name, rtt, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
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

// SetSessionUp feeds the state of the uplink's BGP session; a session down
// makes the uplink down at once. Until it is called for an uplink the
// session plays no part (PA mode without BGP). Unknown names are ignored.
func (m *Monitor) SetSessionUp(uplink string, up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.uplinks {
		if u.name == uplink {
			u.session = inputOf(up)
			m.evaluateLocked(u, m.clock.Now())
		}
	}
}

// SetCarrier feeds the carrier state of a network device; carrier loss
// makes every uplink on that device down at once. Devices no uplink uses are
// ignored. It is the callback given to the CarrierWatcher.
func (m *Monitor) SetCarrier(device string, up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.uplinks {
		if u.device != "" && u.device == device && u.carrier != inputOf(up) {
			u.carrier = inputOf(up)
			m.log.Debug("health: carrier", logKeyUplink, u.name, logKeyDevice, device, logKeyVerdict, u.carrier.String())
			m.evaluateLocked(u, m.clock.Now())
		}
	}
}

func inputOf(up bool) InputState {
	if up {
		return InputUp
	}
	return InputDown
}

// Snapshot is the health of every uplink at one moment. It is a copy: the
// caller may keep it and modify it.
type Snapshot struct {
	// Seq counts verdict changes since the Monitor was built.
	Seq uint64
	// Uplinks in the order of Options.Uplinks.
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
	Reason  string
	Carrier InputState
	Session InputState
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
			Carrier: u.carrier, Session: u.session,
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

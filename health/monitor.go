package health

import (
	"context"
	"errors"
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
	bursts  []*uplinkBurst // one per uplink; their peers are scheds, in order
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

package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/routing"
)

// Speaker is what the loop needs of the BGP speaker (bgp.Speaker).
// SetAnnouncements and SetInternalDefault are idempotent and may be called
// on every pass; Sessions and Announced are safe to call from any
// goroutine; Changed is a level-triggered signal.
type Speaker interface {
	SetAnnouncements(ctx context.Context, anns map[string][]routing.Announcement) (map[string][]routing.Announcement, error)
	SetInternalDefault(ctx context.Context, localPref uint32) error
	// SetInsideLocalPrefs gives each uplink's full-table routes their
	// LOCAL_PREF toward the core (0 or absent: withdrawn from it);
	// idempotent, a no-op without ibgp.advertise: full.
	SetInsideLocalPrefs(ctx context.Context, prefs map[string]uint32) error
	// Reconfigure applies a reload to the sessions.
	Reconfigure(ctx context.Context, cfg *config.Config) error
	// ResetUplink closes and reopens the uplink's sessions (and lifts a
	// max-prefix hold-down): an operator's reset. reason goes to the logs
	// and the peer.
	ResetUplink(ctx context.Context, uplink, reason string) error
	// CloseUplink closes the uplink's sessions so they reconnect as soon as
	// they can, leaving a max-prefix hold-down in place (carrier loss).
	CloseUplink(ctx context.Context, uplink, reason string) error
	Sessions() []routing.SessionState
	// Announced is what each uplink's sessions announce now, for Status.
	Announced() map[string][]routing.Announcement
	Changed() <-chan struct{}
}

// Egress is what the loop needs of fib's egress routes (fib.Egress). Set
// is idempotent and returns the state reached; State reads it back.
// Retarget moves the routes to another table or route protocol from the
// next Set on (a reload changing egress.table or egress.protocol); Retire
// marks a previous run's table and protocol for removal by the next Set.
// Only the loop goroutine calls them.
type Egress interface {
	Set(ctx context.Context, paths []routing.EgressPath, ecmp bool) ([]routing.EgressRoute, error)
	State() ([]routing.EgressRoute, error)
	Retarget(table, protocol int) error
	Retire(table, protocol int) error
	// Invalidate: see Invalidator.
	Invalidate()
}

// ProbeTables is what the loop needs of fib's probe tables
// (fib.ProbeTables): an idempotent Set, and Invalidate (see Invalidator).
// The loop re-applies them on every pass because the kernel drops an
// uplink's routes when its link goes down.
type ProbeTables interface {
	Set(ctx context.Context, tables []routing.ProbeTable) (routing.ProbeState, error)
	Invalidate()
}

// Invalidator is the part of Egress and ProbeTables that lets their Set
// skip the kernel when asked for what it applied last: Invalidate makes
// the next Set read the kernel back and repair it. The loop calls it (see
// verify) at least every controller.resync, which repairs what someone
// else changed, and after a link's carrier changed, since the kernel drops
// a link's routes when it goes down. An applier that always writes in full
// implements it as a no-op.
type Invalidator interface {
	Invalidate()
}

// Health is what the loop reads of the health monitor (health.Monitor).
type Health interface {
	Snapshot() health.Snapshot
	Changed() <-chan struct{}
}

// Translator is what the loop needs of the NPTv6 datapath (nptv6.EBPF or
// nptv6.Kernel, both nptv6.Datapath): Set is declarative and idempotent,
// adds before it removes, and returns the mappings really in place with
// any error; the effect is visible to packets when it returns. Counters
// reads the per-mapping counters for Status. Safe for concurrent use.
type Translator interface {
	Set(ctx context.Context, ms []routing.NPTMapping) ([]routing.NPTMapping, error)
	Counters(ctx context.Context) ([]routing.NPTCounters, error)
}

// SourceNAT is what the loop needs of the IPv4 source NAT (nat44.NAT): Set
// is declarative (one atomic batch, nothing sent when in step); FlushUplink
// deletes the conntrack entries of flows NATed through a device and returns
// how many. Only the loop goroutine calls them.
type SourceNAT interface {
	Set(ctx context.Context, rules []routing.NATRule) ([]routing.NATRule, error)
	FlushUplink(ctx context.Context, device string) (int, error)
}

// DNSPublisher is what the loop needs of the DNS runner (dnsupdate.Runner).
// SetDesired copies the state and returns at once, never blocking the loop
// on the server (a level-triggered hand-off: an unchanged state costs
// nothing); Status and Changed (signalled after every attempt) feed the
// loop's status and events. Safe for concurrent use.
type DNSPublisher interface {
	SetDesired(desired map[string][]netip.Addr)
	Status() routing.DNSStatus
	Changed() <-chan struct{}
}

// SiteSpeaker is what the loop needs of the speaker for a site with
// several edges (bgp.Speaker): SetSiteState tells the edge peers our
// uplinks' states (idempotent, called on every pass); SiteView reads what
// they told us. Changes of the view are signalled on Speaker.Changed.
type SiteSpeaker interface {
	SetSiteState(ctx context.Context, states []routing.UplinkState) error
	SiteView() (routing.SiteView, error)
}

// Deps are the loop's sources and appliers. Health may be nil (nothing is
// probed); the daemon always passes its monitor, idle when nothing is.
// Translator, NAT, Return and DNS are PA mode's (nil in PI mode; NAT nil
// when no uplink has nat44, DNS nil without a dns section).
type Deps struct {
	Speaker     Speaker
	Egress      Egress
	ProbeTables ProbeTables
	Health      Health
	Translator  Translator
	NAT         SourceNAT
	Return      ReturnPath
	DNS         DNSPublisher
	// Site may be nil: a single-edge site (the daemon passes its speaker,
	// which does nothing without edge peers).
	Site   SiteSpeaker
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Status is a read-only snapshot of the loop's view, swapped atomically
// after every pass.
type Status struct {
	// At is when it was taken.
	At time.Time
	// Desired is the last decision.
	Desired Desired
	// Announced is what the speaker reports announcing, per uplink.
	Announced map[string][]routing.Announcement
	// Egress is the egress routes read back from the kernel, and
	// EgressError why they could not be read (Egress is then empty).
	Egress      []routing.EgressRoute
	EgressError string
	// Sessions are the BGP sessions' states.
	Sessions []routing.SessionState
	// Health is the probes' snapshot (zero when nothing is probed).
	Health health.Snapshot
	// Overrides in force, by uplink.
	Overrides map[string]Override
	// Remote is what the other edges told this one (Observed.Remote).
	Remote routing.SiteView
	// ApplyError is the last applier error, empty when the state converged.
	ApplyError string
	// ReconcileErrors counts failed passes since start.
	ReconcileErrors uint64
	// Passes counts decision passes since start.
	Passes uint64
	// PA is the PA-mode datapath and DNS as last applied and read back
	// (nil in PI mode).
	PA *PAStatus
}

// Loop is the controller: one goroutine (Run) decides and applies.
type Loop struct {
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	started time.Time
	history *history

	wake chan struct{}
	cmds chan command

	carrierMu sync.Mutex
	// carrier holds link state by device, guarded by carrierMu.
	carrier map[string]bool

	status atomic.Pointer[Status]

	// Owned by the Run goroutine.
	cfg       *config.Config
	overrides map[string]Override
	memory    map[string]Memory
	// restored is the previous run's decision until Decide stops using it.
	restored map[string]Restored
	// savedDecision is the content of the decision file as last written.
	savedDecision      []byte
	decisionSaveFailed bool
	last               *Desired
	// decomSince is when a decommission began (zero: none).
	decomSince time.Time
	// decommissioned is closed once a decommission was applied; made by
	// New, closed by the Run goroutine.
	decommissioned chan struct{}
	// egressErr is the last egress read-back error, logged once per change.
	egressErr string
	// pendingFlush names the uplinks whose NAT44 conntrack flush has not
	// succeeded yet (Desired.FlushNAT, kept until done).
	pendingFlush []string
	// dnsResult is the last DNS attempt's outcome seen, for events.
	dnsResult string
	// siteErr is the last site view read error, logged once per change.
	siteErr string
	// remote is the other edges' uplinks at the last pass.
	remote map[remoteKey]routing.RemoteUplink
	// verifiedAt is when a pass last had the invalidators re-read the
	// kernel, and verifiedCarrier the carrier by device then (see verify).
	verifiedAt      time.Time
	verifiedCarrier map[string]bool
	retryAt         time.Time
	backoff         time.Duration
	errors          uint64
	passes          uint64
}

// New returns a loop for cfg. Run starts it.
func New(cfg *config.Config, deps Deps) *Loop {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	l := &Loop{
		deps: deps, log: deps.Logger, now: deps.Now, cfg: cfg,
		history: newHistory(cfg.Controller.HistorySize),
		wake:    make(chan struct{}, 1),
		cmds:    make(chan command),
		carrier: map[string]bool{},
		memory:  map[string]Memory{},

		decommissioned: make(chan struct{}),
	}
	l.status.Store(&Status{})
	return l
}

// Status returns the latest pass's snapshot, with each session's prefix
// counts (Received, Accepted, ImportPhase) as of the call: the speaker keeps them as
// its own counters, so reading them reads no RIB, and a full table's
// import shows as it happens instead of at the next pass (which, without
// events, comes every controller.resync). Session states stay those of
// the pass, which the decision saw. Safe for concurrent use; the result
// is shared and must not be modified.
func (l *Loop) Status() *Status {
	st := l.status.Load()
	if len(st.Sessions) == 0 || l.deps.Speaker == nil {
		return st
	}
	out := *st
	out.Sessions = withLiveCounts(st.Sessions, l.deps.Speaker.Sessions())
	return &out
}

// withLiveCounts returns a copy of sessions with the prefix and soft reset
// counts, and the import phase, of the same neighbor's session in live; a
// session live lacks (deleted since the pass) keeps its counts.
func withLiveCounts(sessions, live []routing.SessionState) []routing.SessionState {
	counts := make(map[netip.Addr]routing.SessionState, len(live))
	for _, s := range live {
		counts[s.Neighbor] = s
	}
	out := slices.Clone(sessions)
	for i, s := range out {
		if c, ok := counts[s.Neighbor]; ok {
			out[i].Received, out[i].Accepted, out[i].SoftResetsOut, out[i].ImportPhase = c.Received, c.Accepted, c.SoftResetsOut, c.ImportPhase
		}
	}
	return out
}

// Events returns up to limit events after seq, oldest first. Safe for
// concurrent use.
func (l *Loop) Events(after uint64, limit int) []Event { return l.history.since(after, limit) }

// SubscribeEvents returns a level-triggered signal for new events and a
// cancel function. Safe for concurrent use.
func (l *Loop) SubscribeEvents() (<-chan struct{}, func()) { return l.history.subscribe() }

// SetCarrier records a link-state report (from fib.LinkWatcher) and wakes
// the loop. It never blocks.
func (l *Loop) SetCarrier(device string, up bool) {
	l.carrierMu.Lock()
	old, known := l.carrier[device]
	l.carrier[device] = up
	l.carrierMu.Unlock()
	if !known || old != up {
		l.signal()
	}
}

func (l *Loop) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run decides and applies until ctx ends. It returns nil on cancellation.
func (l *Loop) Run(ctx context.Context) error {
	l.started = l.now()
	if err := l.restoreOverrides(); err != nil {
		return err
	}
	l.retirePreviousEgress()
	l.restoreDecision()
	var healthCh <-chan struct{}
	if l.deps.Health != nil {
		healthCh = l.deps.Health.Changed()
	}
	var dnsCh <-chan struct{}
	if l.deps.DNS != nil {
		dnsCh = l.deps.DNS.Changed()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := l.pass(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(next.Sub(l.now()), time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		case <-l.deps.Speaker.Changed():
		case <-healthCh:
		case <-dnsCh:
		case <-timer.C:
		case c := <-l.cmds:
			c.reply <- l.handle(ctx, c)
		}
	}
}

// pass observes, decides, applies and publishes; it returns when the next
// pass is due without events.
func (l *Loop) pass(ctx context.Context) time.Time {
	now := l.now()
	l.passes++
	obs, sessions, hsnap := l.observe(now)
	obs.Remote = l.siteView()
	d := Decide(l.cfg, obs)
	l.memory = d.Memory
	settled := !d.Waiting && len(d.Restoring) == 0
	if settled && l.restored != nil {
		l.restored = nil // this run knows better from now on
		l.log.Info("the restored decision is replaced by this run's own")
	}
	l.verify(now)
	applyErr := l.apply(ctx, d)
	l.recordRemoteEvents(now, obs.Remote)
	l.recordEvents(now, d, applyErr)
	l.last = &d
	if applyErr == nil && settled {
		l.saveDecision(d)
	}
	if applyErr == nil && d.Decommissioned {
		select {
		case <-l.decommissioned:
		default:
			close(l.decommissioned)
			l.log.Warn("decommissioned: nothing is announced or routed any more")
		}
	}

	// verify just ran or ran less than a resync ago: the next one is due
	// a resync after it, however often events woke the loop since.
	next := l.verifiedAt.Add(l.cfg.Controller.Resync)
	if !d.NextWake.IsZero() && d.NextWake.Before(next) {
		next = d.NextWake
	}
	st := &Status{At: now, Desired: d, Sessions: sessions, Health: hsnap, Overrides: maps.Clone(l.overrides),
		Remote: obs.Remote, ReconcileErrors: l.errors, Passes: l.passes}
	if applyErr != nil {
		l.errors++
		st.ReconcileErrors = l.errors
		st.ApplyError = applyErr.Error()
		if l.backoff == 0 {
			l.backoff = 100 * time.Millisecond
		} else {
			l.backoff = min(2*l.backoff, 10*time.Second)
		}
		l.retryAt = now.Add(l.backoff)
		l.log.Warn("reconcile failed; retrying", "error", applyErr, "retry_in", l.backoff)
		if l.retryAt.Before(next) {
			next = l.retryAt
		}
	} else {
		l.backoff = 0
	}
	st.Announced = l.deps.Speaker.Announced()
	if l.deps.Egress != nil {
		var err error
		if st.Egress, err = l.deps.Egress.State(); err != nil {
			st.EgressError = err.Error()
		}
		if st.EgressError != l.egressErr && st.EgressError != "" {
			l.log.Warn("egress routes cannot be read back; status shows none", "error", st.EgressError)
		}
		l.egressErr = st.EgressError
	}
	st.PA = l.paStatus(ctx, d)
	l.recordDNSEvent(now, st.PA)
	l.status.Store(st)
	return next
}

func (l *Loop) observe(now time.Time) (Observed, []routing.SessionState, health.Snapshot) {
	obs := Observed{Now: now, Started: l.started, StartupDone: l.last != nil && l.last.StartupDone,
		Uplinks: map[string]UplinkObservation{}, Overrides: map[string]Override{}, Memory: l.memory, Restored: l.restored,
		DecommissionSince: l.decomSince}
	for k, o := range l.overrides {
		if o.Active(now) {
			obs.Overrides[k] = o
		}
	}
	sessions := l.deps.Speaker.Sessions()
	var hsnap health.Snapshot
	if l.deps.Health != nil {
		hsnap = l.deps.Health.Snapshot()
	}
	l.carrierMu.Lock()
	carrier := maps.Clone(l.carrier)
	l.carrierMu.Unlock()
	for _, u := range l.cfg.Uplinks {
		o := UplinkObservation{Probed: u.Health != nil}
		for _, s := range sessions {
			if !s.Internal && s.Uplink == u.Name {
				o.Sessions++
				if s.Established() {
					o.Established++
				}
				if s.HeldDown != "" {
					o.HeldDown = append(o.HeldDown, s.Neighbor.String()+": "+s.HeldDown)
				}
			}
		}
		if up, known := carrier[u.Interface]; known && !up {
			o.CarrierDown = true
		}
		if o.Probed {
			if hs, ok := hsnap.Uplink(u.Name); ok {
				o.Health, o.HealthReason = hs.Verdict, hs.Reason
			}
		}
		obs.Uplinks[u.Name] = o
	}
	return obs, sessions, hsnap
}

// verify invalidates what the appliers remember having applied (see
// Invalidator), so that this pass reads the kernel back and repairs it,
// when a resync has passed since the last time or a link's carrier changed
// since. Other passes (a probe verdict moving between up and degraded, a
// BGP update) cost the appliers no netlink call when their part of the
// decision did not change.
func (l *Loop) verify(now time.Time) {
	l.carrierMu.Lock()
	carrier := maps.Clone(l.carrier)
	l.carrierMu.Unlock()
	if now.Sub(l.verifiedAt) < l.cfg.Controller.Resync && maps.Equal(carrier, l.verifiedCarrier) {
		return
	}
	for _, a := range []Invalidator{l.deps.ProbeTables, l.deps.Egress} {
		if a != nil {
			a.Invalidate()
		}
	}
	l.verifiedAt, l.verifiedCarrier = now, carrier
}

// apply hands d to the appliers. Each runs even if another fails.
func (l *Loop) apply(ctx context.Context, d Desired) error {
	var errs []error
	if l.deps.ProbeTables != nil {
		if _, err := l.deps.ProbeTables.Set(ctx, ProbeTablesFor(l.cfg)); err != nil {
			errs = append(errs, err)
		}
	}
	l.resetSessions(ctx, d.ResetSessions)
	// The other edges hear our state even while we wait (unknown then).
	if l.deps.Site != nil {
		if err := l.deps.Site.SetSiteState(ctx, d.SiteState); err != nil {
			errs = append(errs, err)
		}
	}
	// PA datapath before the routes: a route moving to an uplink finds its
	// translation in place. Inbound translation needs no verdict.
	errs = append(errs, l.applyPADatapath(ctx, d)...)
	if d.Waiting && len(d.Restoring) == 0 {
		return errors.Join(errs...) // nothing to announce or route yet
	}
	// Before the announcements: their first call opens the sessions, whose
	// routes then arrive under the right preference.
	if err := l.deps.Speaker.SetInsideLocalPrefs(ctx, d.InsideLocalPrefs()); err != nil {
		errs = append(errs, err)
	}
	if _, err := l.deps.Speaker.SetAnnouncements(ctx, d.Announcements()); err != nil {
		errs = append(errs, err)
	}
	if err := l.deps.Speaker.SetInternalDefault(ctx, d.DefaultLocalPref); err != nil {
		errs = append(errs, err)
	}
	if l.deps.Egress != nil {
		if _, err := l.deps.Egress.Set(ctx, EgressPaths(l.cfg, d), l.cfg.Egress.Mode == config.EgressECMP); err != nil {
			errs = append(errs, err)
		}
	}
	// After the routes moved: flushed flows' next packets take the new
	// uplink instead of recreating entries through the old one.
	if err := l.flushNAT(ctx, d); err != nil {
		errs = append(errs, err)
	}
	if l.deps.DNS != nil && d.PA != nil && d.PA.DNS != nil {
		l.deps.DNS.SetDesired(d.PA.DNS)
	}
	return errors.Join(errs...)
}

// recordEvents turns decision changes into events and logs.
func (l *Loop) recordEvents(now time.Time, d Desired, applyErr error) {
	prev := map[string]Decision{}
	prevFail := false
	if l.last != nil {
		for _, u := range l.last.Uplinks {
			prev[u.Uplink] = u
		}
		prevFail = l.last.FailStatic
	}
	for _, u := range d.Uplinks {
		p, seen := prev[u.Uplink]
		from := p.State
		if !seen {
			from = StateUnknown
		}
		if seen && p.State == u.State && len(p.Announcements) == len(u.Announcements) && p.Egress == u.Egress && p.EgressTier == u.EgressTier && p.Metric == u.Metric && annAttrsEqual(p, u) {
			continue
		}
		if !seen && u.State == StateUnknown {
			continue
		}
		e := l.history.add(Event{Time: now, Uplink: u.Uplink, From: from, To: u.State, Reason: u.Reason, Actions: actions(u, applyErr)})
		l.log.Info("uplink decision", "uplink", u.Uplink, "from", from, "to", u.State, "reason", u.Reason, "actions", fmt.Sprint(e.Actions))
	}
	if d.FailStatic != prevFail {
		to, reason := StateUp, "fail-static cleared: the ladder announces again"
		if d.FailStatic {
			to, reason = StateDown, d.Alarm
			l.log.Error("ALARM fail-static", "alarm", d.Alarm)
		}
		l.history.add(Event{Time: now, From: StateUnknown, To: to, Reason: reason, Actions: []string{fmt.Sprintf("fail-static=%v", d.FailStatic)}})
	}
}

func annAttrsEqual(a, b Decision) bool {
	return slices.EqualFunc(a.Announcements, b.Announcements, routing.Announcement.Equal)
}

func actions(u Decision, applyErr error) []string {
	var out []string
	if len(u.Announcements) == 0 {
		out = append(out, "withdraw")
	} else {
		a := u.Announcements[0]
		s := fmt.Sprintf("announce prepend=%d", a.Prepend)
		if a.GracefulShutdown {
			s += " graceful-shutdown"
		}
		if len(a.Communities) > 0 {
			s += fmt.Sprintf(" communities=%v", a.Communities)
		}
		out = append(out, s)
	}
	if u.Egress {
		out = append(out, fmt.Sprintf("egress tier=%d metric=%d", u.EgressTier, u.Metric))
	} else {
		out = append(out, "no egress")
	}
	if applyErr != nil {
		out = append(out, "apply failed (retrying): "+applyErr.Error())
	}
	return out
}

// ProbeTablesFor returns the probe tables of every probed uplink in cfg,
// and in PA mode of every uplink with a return mark (paReturnRouting).
func ProbeTablesFor(cfg *config.Config) []routing.ProbeTable {
	var out []routing.ProbeTable
	for i, u := range cfg.Uplinks {
		if u.Health != nil {
			out = append(out, routing.ProbeTable{Uplink: u.Name, Mark: u.Health.Mark, Table: u.Health.Table, Device: u.Interface, Gateways: u.Gateways()})
		} else if mark, table, ok := paReturnRouting(cfg, i); ok {
			out = append(out, routing.ProbeTable{Uplink: u.Name, Mark: mark, Table: table, Device: u.Interface, Gateways: u.Gateways()})
		}
	}
	return out
}

// EgressPaths returns the egress paths of d's decisions, each placed by
// the configuration of the uplink it names (an uplink cfg lacks gets none),
// then the other edges' defaults (d.EdgeEgress, named by EdgePathName).
func EgressPaths(cfg *config.Config, d Desired) []routing.EgressPath {
	var paths []routing.EgressPath
	for _, dec := range d.Uplinks {
		u, ok := uplinkConfig(cfg, dec.Uplink)
		if !dec.Egress || !ok {
			continue
		}
		paths = append(paths, routing.EgressPath{Uplink: u.Name, Device: u.Interface, Gateways: u.Gateways(),
			Metric: EgressMetric(cfg, u.Name, dec.EgressTier), Weight: dec.Weight})
	}
	for _, e := range d.EdgeEgress {
		paths = append(paths, routing.EgressPath{Uplink: EdgePathName(e.Neighbor), Device: e.Device, Gateways: []netip.Addr{e.Gateway}, Metric: e.Metric, Weight: 1})
	}
	return paths
}

// resetSessions closes the BGP sessions of the uplinks Decide names (their
// carrier just went away), so they reconnect as soon as the link returns
// instead of after the hold timer. A failure is logged, not retried: the
// hold timer closes the session anyway.
func (l *Loop) resetSessions(ctx context.Context, uplinks []string) {
	for _, name := range uplinks {
		if err := l.deps.Speaker.CloseUplink(ctx, name, "carrier lost"); err != nil {
			l.log.Warn("resetting BGP sessions after carrier loss", "uplink", name, "error", err)
		} else {
			l.log.Info("carrier lost: BGP sessions reset to reconnect when the link returns", "uplink", name)
		}
	}
}

package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/multihomed/multihomed/routing"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
)

// State is an uplink's decided state.
type State string

// Uplink states (DESIGN.md section 3).
const (
	StateUnknown    State = "unknown"
	StateUp         State = "up"
	StateDegraded   State = "degraded"
	StateDown       State = "down"
	StateDrained    State = "drained"
	StateForcedDown State = "forced-down"
)

// rank orders health states from best to worst; unknown is outside.
func rank(s State) int {
	switch s {
	case StateUp:
		return 0
	case StateDegraded:
		return 1
	case StateDown:
		return 2
	}
	return -1
}

// Observed is everything Decide looks at. It is a value: the loop builds a
// fresh one for every decision.
type Observed struct {
	// Now is the decision time.
	Now time.Time
	// Started is when the daemon started, for the startup wait.
	Started time.Time
	// StartupDone is the previous Desired.StartupDone: once the startup
	// wait has ended it never starts again (a reload that adds probes
	// must not withdraw everything while they get their first verdict).
	StartupDone bool
	// Uplinks holds what the sources see, by uplink name.
	Uplinks map[string]UplinkObservation
	// Overrides holds the operator overrides in force, by uplink name.
	Overrides map[string]Override
	// Memory is the previous Desired.Memory.
	Memory map[string]Memory
	// Restored is the decision the previous run applied, by uplink
	// (validated against the configuration), until the loop sees it is no
	// longer used (Desired.Restoring empty).
	Restored map[string]Restored
	// DecommissionSince, when not zero, is when an operator decommissioned
	// the site (Loop.Decommission): every uplink drains, then everything
	// is withdrawn.
	DecommissionSince time.Time
	// Remote is what the site's other edges told this one over iBGP (empty
	// for a single-edge site): their uplinks' states and their defaults.
	Remote routing.SiteView
}

// UplinkObservation is what the sources report about one uplink.
type UplinkObservation struct {
	// Probed is true when the uplink has health probes configured.
	Probed bool
	// Health is the probes' verdict, and HealthReason its explanation.
	Health       health.Verdict
	HealthReason string
	// Sessions counts the uplink's BGP sessions; Established those up.
	Sessions, Established int
	// HeldDown lists the sessions the speaker keeps down on purpose, each
	// as "NEIGHBOR: cause" (max-prefix exceeded, and until when), so that
	// the decision's reason, and with it the event, names the cause.
	HeldDown []string
	// CarrierDown is true when the uplink's interface lost carrier.
	CarrierDown bool
}

// Override is an operator's instruction for one uplink.
type Override struct {
	// Drain announces with GRACEFUL_SHUTDOWN, then withdraws after the
	// drain grace.
	Drain bool
	// ForceDown withdraws at once and removes egress.
	ForceDown bool
	// ExtraPrepend is added to every announcement to the uplink.
	ExtraPrepend uint8
	// Reason and Who say why and who.
	Reason, Who string
	// Since is when the override was set; Expires, when not zero, is when
	// it lapses.
	Since, Expires time.Time
}

// Active reports whether o is in force at now.
func (o Override) Active(now time.Time) bool {
	return (o.Drain || o.ForceDown || o.ExtraPrepend > 0) && (o.Expires.IsZero() || now.Before(o.Expires))
}

// Memory is what Decide remembers about an uplink between decisions.
type Memory struct {
	// State is the last health-derived state (before overrides).
	State State
	// Since is when State was entered.
	Since time.Time
	// HoldUntil: State may not improve before this time.
	HoldUntil time.Time
	// Backoff is the hold-down applied at the last worsening; it doubles on
	// each worsening that follows a state held for less than HoldDownMax.
	Backoff time.Duration
	// LastWorse is when State last got worse.
	LastWorse time.Time
	// CarrierDown is the carrier seen at the last decision: a change to
	// true asks for a session reset (Desired.ResetSessions).
	CarrierDown bool
	// SessionSeen is true once a BGP session of the uplink was established
	// in this run; until then a restored decision may stand in for it.
	SessionSeen bool
	// Egress is the uplink's final Decision.Egress: a change to false asks
	// for a NAT44 conntrack flush in PA mode (Desired.FlushNAT).
	Egress bool
}

// Decision is what was decided for one uplink.
type Decision struct {
	// Uplink names the uplink.
	Uplink string
	// State is the effective state, overrides included.
	State State
	// Reason explains State.
	Reason string
	// Announcements is what the uplink's ISP hears (empty: withdrawn).
	Announcements []routing.Announcement
	// Egress is true when the uplink carries egress.
	Egress bool
	// EgressTier ranks the uplink's egress: TierUp, TierDegraded or
	// TierLast (draining or fail-static). In ECMP mode only the best tier
	// present carries traffic; in failover mode the tier orders the routes
	// before the configuration order does.
	EgressTier int
	// Metric is the route metric the egress default gets (EgressMetric):
	// derived from EgressTier and the uplink's place in the configuration,
	// for the kernel and for display. Nothing reads a tier back from it.
	Metric int
	// Weight is the uplink's share of ECMP egress.
	Weight int
	// InsideLocalPref is the LOCAL_PREF the uplink's full-table routes
	// carry to the core peers (ibgp.advertise: full, import: full): the
	// default route's ladder applied to this uplink alone. 0: they are not
	// advertised inside (uplink not usable, or the feature is off).
	InsideLocalPref uint32
}

// Egress tiers (Decision.EgressTier), best first.
const (
	TierUp       = 0
	TierDegraded = 1
	TierLast     = 2
	// TierRemote is another edge's default (EdgeEgress): worse than any
	// local uplink, so used only when this edge has nothing better.
	TierRemote = 3
)

// tierMetricStep separates the egress tiers' route metrics in failover
// mode: the configuration order (10 apart) stays inside a tier as long as
// the site has fewer than 100 uplinks.
const tierMetricStep = 1000

// EgressMetric is the route metric of uplink's egress default in tier:
// egress.metric, plus a step per tier, plus 10 per place of the uplink in
// the configuration (looked up by name; 0 for an unknown one).
func EgressMetric(cfg *config.Config, uplink string, tier int) int {
	pos := slices.IndexFunc(cfg.Uplinks, func(u config.Uplink) bool { return u.Name == uplink })
	return cfg.Egress.Metric + tier*tierMetricStep + 10*max(pos, 0)
}

// Desired is the outcome of a decision.
type Desired struct {
	// Uplinks are in configuration order.
	Uplinks []Decision
	// Waiting is true during the startup wait: nothing is announced yet.
	Waiting bool
	// StartupDone is true from the first decision that is not Waiting on;
	// it goes into the next Observed.
	StartupDone bool
	// FailStatic is true when the safety rule overrode the ladder, and
	// Alarm says why.
	FailStatic bool
	Alarm      string
	// DefaultLocalPref is the LOCAL_PREF of the default route sent to
	// internal routers; 0 withdraws it.
	DefaultLocalPref uint32
	// Memory goes into the next Observed.
	Memory map[string]Memory
	// NextWake is when the decision would change with time alone (zero:
	// never).
	NextWake time.Time
	// ResetSessions names the uplinks whose BGP sessions the loop resets
	// now: their carrier just went away, and a reset session reconnects
	// as soon as the link returns instead of after the hold timer.
	ResetSessions []string
	// Restoring names the uplinks whose announcements and egress are the
	// previous run's (Observed.Restored): during the startup wait, or
	// while their session has not come up yet within it. Applying them
	// before the sessions send End-of-RIB keeps graceful restart's stale
	// routes at the ISPs from being flushed.
	Restoring []string
	// Decommissioned is true once a decommission's drain is over: nothing
	// is announced anywhere, there is no egress and no internal default,
	// whatever the sessions (no fail-static).
	Decommissioned bool
	// PA is the PA-mode state (nil in PI mode).
	PA *PADesired
	// FlushNAT names the uplinks (PA mode, with nat44) that just stopped
	// carrying egress: the loop deletes the conntrack entries of flows
	// NATed through them after the routes moved, so the flows' next
	// packets are NATed through the uplink they now leave by instead of
	// keeping a source address that uplink's ISP no longer routes.
	FlushNAT []string
	// SiteState is what this edge tells the other edges about its uplinks
	// (each decision's State; unknown while waiting), in configuration
	// order.
	SiteState []routing.UplinkState
	// EdgeEgress are the other edges' defaults installed as egress below
	// every local tier (TierRemote); see siteEgress.
	EdgeEgress []EdgeEgress
	// RemoteUsable counts the other edges' usable uplinks: while it is
	// above zero the site is reachable without this edge, and fail-static
	// does not apply here.
	RemoteUsable int
	// InsideAdvertise is true with ibgp.advertise: full: the uplinks'
	// InsideLocalPref are in force (for status and metrics).
	InsideAdvertise bool
}

// Announcements returns the per-uplink announcements for bgp.
func (d Desired) Announcements() map[string][]routing.Announcement {
	out := map[string][]routing.Announcement{}
	for _, u := range d.Uplinks {
		if len(u.Announcements) > 0 {
			out[u.Uplink] = u.Announcements
		}
	}
	return out
}

// InsideLocalPrefs returns each uplink's InsideLocalPref for bgp (uplinks
// at 0 left out).
func (d Desired) InsideLocalPrefs() map[string]uint32 {
	out := map[string]uint32{}
	for _, u := range d.Uplinks {
		if u.InsideLocalPref > 0 {
			out[u.Uplink] = u.InsideLocalPref
		}
	}
	return out
}

// Decision returns the decision for the named uplink.
func (d Desired) Decision(uplink string) (Decision, bool) {
	for _, u := range d.Uplinks {
		if u.Uplink == uplink {
			return u, true
		}
	}
	return Decision{}, false
}

// Decide applies the action ladder of DESIGN.md section 3 to obs. It is
// pure: the same inputs give the same Desired.
func Decide(cfg *config.Config, obs Observed) Desired {
	cc := cfg.Controller
	d := Desired{Memory: map[string]Memory{}}
	wake := func(t time.Time) {
		if t.After(obs.Now) && (d.NextWake.IsZero() || t.Before(d.NextWake)) {
			d.NextWake = t
		}
	}

	// Startup: wait (bounded) until every probed uplink has a verdict.
	startupEnd := obs.Started.Add(cc.StartupWait)
	if !obs.StartupDone && obs.Now.Before(startupEnd) {
		for _, u := range cfg.Uplinks {
			o := obs.Uplinks[u.Name]
			if o.Probed && o.Health == health.VerdictUnknown && !o.CarrierDown {
				d.Waiting = true
			}
		}
		if d.Waiting {
			wake(startupEnd)
		}
	}
	d.StartupDone = !d.Waiting

	restoredInside := map[string]uint32{} // Restored.InsideLocalPref of the uplinks restored below
	for _, u := range cfg.Uplinks {
		o := obs.Uplinks[u.Name]
		mem := obs.Memory[u.Name]
		if o.CarrierDown && !mem.CarrierDown {
			d.ResetSessions = append(d.ResetSessions, u.Name)
		}
		if mem.State == "" {
			mem.State = StateUnknown
		}
		sessionSeen := mem.SessionSeen || o.Established > 0
		// A session that has not come up since the start says nothing about
		// the ISP yet: the speaker opens its sessions only with the first
		// announcements (so that End-of-RIB follows the site's prefixes),
		// and they take a moment to establish. Until startup_wait has
		// passed such an uplink is judged by its probes; calling it down
		// would make that first announcement empty, and the End-of-RIB
		// behind it would flush the routes the ISPs kept from before a
		// restart.
		sessionPending := !sessionSeen && o.Sessions > 0 && obs.Now.Before(startupEnd)
		if sessionPending {
			wake(startupEnd)
		}
		raw, why := rawState(u, o, sessionPending)
		reason := why
		switch {
		case raw == StateUnknown:
			// Health restarted or not yet known: keep what we had.
		case mem.State == StateUnknown:
			mem = Memory{State: raw, Since: obs.Now, Backoff: mem.Backoff, LastWorse: mem.LastWorse}
		case rank(raw) > rank(mem.State):
			// Worse: at once, and start (or lengthen) the hold-down.
			backoff := cc.HoldDown
			// The penalty decays with stability: an uplink that stayed in
			// its state for hold_down_max starts over.
			if mem.Backoff > 0 && obs.Now.Sub(mem.Since) < cc.HoldDownMax {
				backoff = min(2*mem.Backoff, cc.HoldDownMax)
			}
			mem = Memory{State: raw, Since: obs.Now, HoldUntil: obs.Now.Add(backoff), Backoff: backoff, LastWorse: obs.Now}
			if backoff > cc.HoldDown {
				// The lengthened hold-down shows in the event of the
				// worsening, where an operator reads the flapping.
				reason = fmt.Sprintf("%s; flapping: hold-down %s before it may return", why, backoff)
			}
		case rank(raw) < rank(mem.State):
			if obs.Now.Before(mem.HoldUntil) {
				reason = fmt.Sprintf("%s; held %s until %s (hold-down %s after flapping)", why, mem.State, mem.HoldUntil.UTC().Format(time.RFC3339), mem.Backoff)
				wake(mem.HoldUntil)
			} else {
				mem.State, mem.Since = raw, obs.Now
			}
		}
		state := mem.State
		mem.CarrierDown, mem.SessionSeen = o.CarrierDown, sessionSeen
		d.Memory[u.Name] = mem

		dec := Decision{Uplink: u.Name, State: state, Reason: reason, Weight: u.Weight}
		ov, hasOv := obs.Overrides[u.Name]
		if hasOv && !ov.Active(obs.Now) {
			hasOv = false
		}
		if hasOv && !ov.Expires.IsZero() {
			wake(ov.Expires)
		}
		extra := uint8(0)
		if hasOv {
			extra = ov.ExtraPrepend
		}
		healthy := state == StateUp || state == StateDegraded
		switch {
		case hasOv && ov.ForceDown:
			dec.State, dec.Reason = StateForcedDown, overrideReason("forced down", ov)
		case hasOv && ov.Drain:
			dec.State = StateDrained
			graceEnd := ov.Since.Add(cc.DrainGrace)
			if healthy && obs.Now.Before(graceEnd) {
				dec.Reason = overrideReason(fmt.Sprintf("draining: graceful shutdown until %s", graceEnd.UTC().Format(time.RFC3339)), ov)
				dec.Announcements = announce(cfg, u, prependOf(u.BGP.Prepend, extra), nil, nil, true)
				dec.Egress, dec.EgressTier = true, TierLast
				wake(graceEnd)
			} else {
				dec.Reason = overrideReason("drained", ov)
			}
		case state == StateUp:
			dec.Announcements = announce(cfg, u, prependOf(u.BGP.Prepend, extra), nil, nil, false)
			dec.Egress, dec.EgressTier = true, TierUp
		case state == StateDegraded:
			med := u.BGP.MED
			if u.Degraded.MED != nil {
				med = u.Degraded.MED
			}
			dec.Announcements = announce(cfg, u, prependOf(u.BGP.Prepend, u.Degraded.Prepend, extra), u.Degraded.Communities, med, false)
			dec.Egress, dec.EgressTier = true, TierDegraded
		case state == StateDown && u.DownAction == config.DownPrepend:
			dec.Announcements = announce(cfg, u, config.MaxPrepend, nil, nil, false)
		}
		if hasOv && ov.ExtraPrepend > 0 && !ov.Drain && !ov.ForceDown {
			dec.Reason += fmt.Sprintf("; operator prepend +%d (%s)", ov.ExtraPrepend, ov.Reason)
		}
		if d.Waiting {
			dec.Announcements, dec.Egress = nil, false
			dec.Reason += "; waiting for the first health verdicts"
		}
		// Restart: what the previous run applied stands until this run
		// knows better (the first verdicts, or the uplink's session), and
		// at most for the startup wait; never for a forced-down uplink or
		// one without carrier.
		r, restored := obs.Restored[u.Name]
		if restored && obs.Now.Before(startupEnd) && (d.Waiting || !sessionSeen) && !o.CarrierDown && dec.State != StateForcedDown {
			dec.Announcements = slices.Clone(r.Announcements)
			dec.Egress, dec.EgressTier = r.Egress, r.EgressTier
			if r.InsideLocalPref != nil {
				restoredInside[u.Name] = *r.InsideLocalPref
			}
			dec.Reason += "; the previous run's decision restored until the first verdicts"
			d.Restoring = append(d.Restoring, u.Name)
			wake(startupEnd)
		}
		d.Uplinks = append(d.Uplinks, dec)
	}

	if !obs.DecommissionSince.IsZero() {
		decommission(cfg, obs, &d, wake)
	}

	// Safety: never isolate the site (unless the operator decommissions it).
	// PA mode announces nothing: its safety rule is about egress.
	pa := cfg.Site.Mode == config.ModePA
	if pa && cc.FailStatic && !d.Waiting && obs.DecommissionSince.IsZero() {
		failStaticPA(cfg, obs, &d)
	}
	// The site is the union of every edge's uplinks: a usable uplink at
	// another edge keeps it reachable (DESIGN.md section 11).
	d.RemoteUsable = remoteUsable(obs.Remote)
	if !pa && cc.FailStatic && !d.Waiting && obs.DecommissionSince.IsZero() {
		announcing := slices.ContainsFunc(d.Uplinks, func(x Decision) bool { return len(x.Announcements) > 0 })
		if !announcing && d.RemoteUsable == 0 {
			var held []string
			for i := range d.Uplinks {
				dec := &d.Uplinks[i]
				u, _ := uplinkConfig(cfg, dec.Uplink)
				o := obs.Uplinks[u.Name]
				if o.Established == 0 {
					continue
				}
				held = append(held, fmt.Sprintf("%s (%s)", u.Name, dec.State))
				dec.Announcements = announce(cfg, u, u.BGP.Prepend, nil, nil, dec.State == StateDrained)
				if !o.CarrierDown {
					dec.Egress, dec.EgressTier = true, TierLast
				}
				dec.Reason += "; fail-static: announcing anyway"
			}
			if len(held) > 0 {
				d.FailStatic = true
				d.Alarm = "fail-static: the ladder would withdraw the site from every uplink; announcing on every uplink with an established session: " + strings.Join(held, ", ")
			}
		}
	}

	// Inside: before ECMP keeps only the best tier for egress, so that a
	// degraded uplink's destinations are demoted at the core, not
	// withdrawn (only this uplink has some of them).
	// A restored uplink keeps the preference it had: its restored egress
	// may be the one ECMP left it (none while degraded), which would
	// withdraw its routes from the core until the first verdicts and then
	// demote them, two re-imports for nothing.
	d.InsideAdvertise = cfg.IBGP.Advertise == config.AdvertiseFull
	for i := range d.Uplinks {
		dec := &d.Uplinks[i]
		if lp, ok := restoredInside[dec.Uplink]; ok && slices.Contains(d.Restoring, dec.Uplink) {
			dec.InsideLocalPref = lp
			continue
		}
		dec.InsideLocalPref = insideLocalPref(cfg, *dec, d.FailStatic)
	}

	// ECMP: the healthiest tier only.
	if cfg.Egress.Mode == config.EgressECMP {
		best := -1
		for _, dec := range d.Uplinks {
			if dec.Egress && (best < 0 || dec.EgressTier < best) {
				best = dec.EgressTier
			}
		}
		for i := range d.Uplinks {
			if d.Uplinks[i].Egress && d.Uplinks[i].EgressTier != best {
				d.Uplinks[i].Egress = false
			}
		}
	}
	for i := range d.Uplinks {
		dec := &d.Uplinks[i]
		if dec.Egress {
			dec.Metric = EgressMetric(cfg, dec.Uplink, dec.EgressTier)
		} else {
			dec.EgressTier = 0
		}
		if mem, ok := d.Memory[dec.Uplink]; ok {
			mem.Egress = dec.Egress
			d.Memory[dec.Uplink] = mem
		}
	}
	if pa {
		decidePA(cfg, obs, &d)
	}

	siteEgress(cfg, obs, &d)

	// Internal routers follow the best usable uplink.
	for _, dec := range d.Uplinks {
		if !dec.Egress {
			continue
		}
		d.DefaultLocalPref = max(d.DefaultLocalPref, ladderLocalPref(cfg, dec, d.FailStatic))
	}
	d.SiteState = siteState(d)
	return d
}

// ladderLocalPref is the LOCAL_PREF internal routers get for what dec's
// uplink carries: local_pref_up in the up tier, local_pref_degraded in any
// other (degraded, draining, fail-static), 0 without egress. By tier, not
// state: a restored uplink keeps the preference its tier had in the
// previous run.
func ladderLocalPref(cfg *config.Config, dec Decision, failStatic bool) uint32 {
	switch {
	case !dec.Egress:
		return 0
	case dec.EgressTier == TierUp && !failStatic:
		return cfg.IBGP.LocalPrefUp
	}
	return cfg.IBGP.LocalPrefDegraded
}

// insideLocalPref is Decision.InsideLocalPref.
func insideLocalPref(cfg *config.Config, dec Decision, failStatic bool) uint32 {
	u, ok := uplinkConfig(cfg, dec.Uplink)
	if !ok || cfg.IBGP.Advertise != config.AdvertiseFull || u.BGP.Import != config.ImportFull {
		return 0
	}
	return ladderLocalPref(cfg, dec, failStatic)
}

// decommission overrides the ladder for a site being taken out of
// service on purpose: every uplink that announces keeps announcing with
// GRACEFUL_SHUTDOWN (RFC 8326) until drain_grace after the decommission
// began, so the ISPs move traffic away first; then nothing is announced
// and nothing routed. Fail-static does not apply: isolating the site is
// what the operator asked for.
func decommission(cfg *config.Config, obs Observed, d *Desired, wake func(time.Time)) {
	graceEnd := obs.DecommissionSince.Add(cfg.Controller.DrainGrace)
	draining := obs.Now.Before(graceEnd)
	d.Waiting, d.Restoring, d.FailStatic, d.Alarm = false, nil, false, ""
	d.Decommissioned = !draining
	for i := range d.Uplinks {
		dec := &d.Uplinks[i]
		if draining && len(dec.Announcements) > 0 {
			for j := range dec.Announcements {
				dec.Announcements[j].GracefulShutdown = true
			}
			dec.Reason = fmt.Sprintf("decommissioning: graceful shutdown until %s, then withdrawn", graceEnd.UTC().Format(time.RFC3339))
			continue
		}
		dec.State, dec.Announcements, dec.Egress, dec.EgressTier, dec.Metric = StateDrained, nil, false, 0, 0
		dec.Reason = "decommissioned: withdrawn everywhere"
	}
	if draining {
		wake(graceEnd)
	}
}

// rawState derives an uplink's state from its observation alone.
func rawState(u config.Uplink, o UplinkObservation, sessionPending bool) (State, string) {
	switch {
	case o.CarrierDown:
		return StateDown, "carrier lost on " + u.Interface
	case o.Sessions > 0 && o.Established == 0 && len(o.HeldDown) > 0:
		return StateDown, "no BGP session established; held down: " + strings.Join(o.HeldDown, "; ")
	case o.Sessions > 0 && o.Established == 0 && !sessionPending:
		return StateDown, "no BGP session established"
	case !o.Probed:
		if o.Sessions == 0 {
			return StateUnknown, "no BGP session configured yet"
		}
		if sessionPending {
			return StateUp, "BGP session opening (no health probes configured)"
		}
		return StateUp, "BGP session established (no health probes configured)"
	}
	switch o.Health {
	case health.VerdictUp:
		return StateUp, o.HealthReason
	case health.VerdictDegraded:
		return StateDegraded, o.HealthReason
	case health.VerdictDown:
		return StateDown, o.HealthReason
	}
	return StateUnknown, "no health verdict yet"
}

// uplinkConfig returns the configuration of the named uplink.
func uplinkConfig(cfg *config.Config, name string) (config.Uplink, bool) {
	i := slices.IndexFunc(cfg.Uplinks, func(u config.Uplink) bool { return u.Name == name })
	if i < 0 {
		return config.Uplink{}, false
	}
	return cfg.Uplinks[i], true
}

func overrideReason(what string, o Override) string {
	s := what + " by operator"
	if o.Who != "" {
		s += " " + o.Who
	}
	if o.Reason != "" {
		s += ": " + o.Reason
	}
	if !o.Expires.IsZero() {
		s += " (until " + o.Expires.UTC().Format(time.RFC3339) + ")"
	}
	return s
}

// prependOf adds prepends up, capped at config.MaxPrepend: in a uint8 the
// sum of large parts would wrap to a shorter path.
func prependOf(parts ...uint8) uint8 {
	n := 0
	for _, p := range parts {
		n += int(p)
	}
	return uint8(min(n, int(config.MaxPrepend)))
}

// announce builds the uplink's announcements of every site prefix.
func announce(cfg *config.Config, u config.Uplink, prepend uint8, extraComms []routing.Community, med *uint32, gshut bool) []routing.Announcement {
	comms := slices.Clone(u.BGP.Communities)
	for _, c := range extraComms {
		if !slices.Contains(comms, c) {
			comms = append(comms, c)
		}
	}
	if med == nil {
		med = u.BGP.MED
	}
	var out []routing.Announcement
	for _, p := range cfg.Site.Prefixes {
		out = append(out, routing.Announcement{
			Prefix:           p,
			Prepend:          prepend,
			Communities:      slices.Clone(comms),
			LargeCommunities: slices.Clone(u.BGP.LargeCommunities),
			MED:              med,
			GracefulShutdown: gshut,
		})
	}
	return out
}

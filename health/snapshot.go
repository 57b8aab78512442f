package health

import "time"

// Changed returns a channel that receives a value after verdicts change. It
// has capacity one and sends never block: several changes may merge into
// one signal, so read Snapshot after each receive.
func (m *Monitor) Changed() <-chan struct{} { return m.changed }

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
	// Figures are over the windows of the up targets (of all targets when
	// none is up): the ones the verdict was judged on. Their LastProbe is
	// the latest result of any target of the uplink.
	Figures
	// Bursts counts the suspicion bursts started on the uplink and
	// BurstProbes the extra probes they sent, over all its targets (the sum
	// of TargetStatus.BurstProbes): what bursts cost beyond the steady
	// rate. BurstsSuppressed counts the suspicions the uplink's burst
	// budget refused a burst, and the bursts it cut short (see
	// docs/health.md, "Suspicion bursts"). All count since the Monitor
	// started, or since the uplink's device or health block last changed.
	Bursts           uint64
	BurstProbes      uint64
	BurstsSuppressed uint64
	Targets          []TargetStatus
}

// TargetStatus is the state and figures of one target.
type TargetStatus struct {
	// Target is the target's compact form.
	Target string
	State  TargetState
	// Since is when State was entered.
	Since time.Time
	// Figures are over the target's window.
	Figures
	// Probes counts the probe results since the Monitor started, or since
	// the uplink's device or health block last changed; BurstProbes counts
	// those of them that were burst probes (not in the window's figures).
	Probes      uint64
	BurstProbes uint64
	// LateReplies counts echo replies that came after their probe's
	// timeout (see docs/health.md, "Timeouts").
	LateReplies uint64
	// Timeout is the adaptive timeout the target's next probe gets (the
	// ceiling before its first reply), and SRTT and RTTVar the smoothed RTT
	// and its variation it is computed from (zero before the first reply).
	Timeout time.Duration
	SRTT    time.Duration
	RTTVar  time.Duration
	// LastError is the error of the last probe, empty if it succeeded.
	LastError string
}

// Figures are the live measurements of a target, or of an uplink's
// targets together, as of LastProbe.
type Figures struct {
	// Loss is the percentage of failed probes over the window, of Samples
	// probes; RTTMean and RTTP95 (nearest rank) are over its replies.
	Loss    float64
	RTTMean time.Duration
	RTTP95  time.Duration
	Samples int
	// RTTLast is the RTT of the latest reply, which came at LastReply; a
	// failed probe since leaves both as they were (zero: no reply yet).
	RTTLast   time.Duration
	LastReply time.Time
	// LastProbe is when the latest probe result (reply or failure) came in
	// and the figures were computed (zero before the first): now -
	// LastProbe is their age.
	LastProbe time.Time
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
			Figures: Figures{Loss: u.loss, RTTMean: u.rttMean, RTTP95: u.rttP95, Samples: u.samples,
				RTTLast: u.rttLast, LastReply: u.lastReply, LastProbe: u.lastProbe},
		}
		us.Bursts, us.BurstsSuppressed = u.bursts, u.burstsSuppressed
		for _, tt := range u.targets {
			us.BurstProbes += tt.burstProbes
			var w window
			tt.appendWindow(&w)
			loss, mean, p95 := w.figures()
			us.Targets = append(us.Targets, TargetStatus{
				Target: tt.name, State: tt.state, Since: tt.lastChange,
				Figures: Figures{Loss: loss, RTTMean: mean, RTTP95: p95, Samples: w.samples,
					RTTLast: tt.rttLast, LastReply: tt.lastReply, LastProbe: tt.lastProbe},
				Probes: tt.probes, BurstProbes: tt.burstProbes, LateReplies: tt.lateReplies, LastError: tt.lastErr,
				Timeout: tt.timeout(), SRTT: tt.rto.srtt, RTTVar: tt.rto.rttvar,
			})
		}
		s.Uplinks = append(s.Uplinks, us)
	}
	return s
}

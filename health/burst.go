package health

import "time"

// The burst budget (see burstBudget): burst probes refill at burstShare of
// the uplink's steady probe rate, and never slower than one full burst per
// burstRefill. burstRefill is short enough that a gray failure that comes
// back a few seconds after the last one ended (a flapping path, or
// TestDetectionTimes' back-to-back faults) still gets a full burst at the
// 1 s default; the budget is there to bound the fast profiles, where the
// quarter of the steady rate is the larger.
const (
	burstShare  = 0.25
	burstRefill = 2 * time.Second
)

// uplinkBurst is the suspicion-burst state of one uplink, shared by the
// schedules of its targets. A burst runs while a peer has burst probes
// left (targetSched.burstLeft); it goes in rounds, burst_interval apart,
// and every peer that is owed a probe and not busy leaves in the round, on
// one wake-up of the scheduler.
type uplinkBurst struct {
	peers []*targetSched // the uplink's targets, in order

	// Guarded by Monitor.mu.
	// epoch counts the bursts started; each probe remembers the epoch it
	// was sent in (targetSched.sentEpoch), so a reply can tell whether its
	// probe left after the suspicion started.
	epoch  uint64
	next   time.Time // the next round of the burst that runs (or the last)
	cut    bool      // the budget cut the burst that runs short
	budget burstBudget
}

func newUplinkBurst(cfg Config, peers []*targetSched) *uplinkBurst {
	return &uplinkBurst{peers: peers, budget: newBurstBudget(cfg)}
}

// runningLocked reports whether a burst runs. m.mu must be held.
func (b *uplinkBurst) runningLocked() bool {
	for _, p := range b.peers {
		if p.burstLeft > 0 {
			return true
		}
	}
	return false
}

// startBurstLocked starts a suspicion burst on the uplink of s, after s's
// probe was lost or its reply came later than expected (see recordLocked):
// every target of the uplink that is not down is owed burst_probes more
// probes, in rounds burst_interval apart, the first at once. A target's
// burst ends early when the suspicion is settled for it (see
// settleBurstLocked), so a burst costs one round when the loss was random,
// and burst_probes rounds only on targets that keep failing. A burst is not
// extended or restarted while it runs. It is not started, and counted as
// suppressed, when the budget cannot pay one probe to each of those
// targets. m.mu must be held.
func (m *Monitor) startBurstLocked(s *targetSched, now time.Time) {
	b, u := s.ub, s.u
	if b.runningLocked() {
		return
	}
	n := 0
	for _, p := range b.peers {
		if p.tt.state != TargetDown {
			n++
		}
	}
	if n == 0 {
		return
	}
	if !b.budget.has(now, n) {
		u.burstsSuppressed++
		return
	}
	u.bursts++
	b.epoch++
	b.next, b.cut = now, false
	for _, p := range b.peers {
		if p.tt.state != TargetDown {
			p.burstLeft, p.burstAt = u.cfg.BurstProbes, now
		}
	}
	// Peers are idle or in flight: wake the scheduler to send the idle ones
	// (from dispatch, which drains the kick, they leave on this wake-up).
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// settleBurstLocked ends s's part of the burst that runs once its probe,
// sent since the suspicion started, settled it: a reply within the RTT
// estimate clears it, and the target going down confirms it. Replies to
// probes sent before the suspicion settle nothing. m.mu must be held.
func (s *targetSched) settleBurstLocked(inTime bool) {
	if s.burstLeft > 0 && s.sentEpoch == s.ub.epoch && (inTime || s.tt.state == TargetDown) {
		s.burstLeft = 0
	}
}

// burstDue reports whether s is owed a burst probe at now.
func (s *targetSched) burstDue(now time.Time) bool {
	return s.burstLeft > 0 && !now.Before(s.burstAt)
}

// burstBudget is a token bucket of burst probes, one per uplink. It holds
// one full burst (burst_probes x targets) and refills at a quarter of the
// uplink's steady probe rate, or one full burst per 2 s if that is more:
// at 20 Hz and 3 targets, 15 burst probes a second against 60 steady ones;
// at the 1 s default a full burst 2 s after the last one, so a gray
// failure after a quiet period is confirmed as fast as with no budget. The
// zero time means full. Not safe for concurrent use; Monitor.mu guards it.
type burstBudget struct {
	capacity float64
	rate     float64 // tokens per second
	tokens   float64
	at       time.Time // when tokens was last brought up to date
}

func newBurstBudget(cfg Config) burstBudget {
	capacity := float64(cfg.BurstProbes * len(cfg.Targets))
	var steady float64 // probes per second
	for _, t := range cfg.Targets {
		if t.Interval > 0 {
			steady += float64(time.Second) / float64(t.Interval)
		}
	}
	return burstBudget{
		capacity: capacity,
		rate:     max(burstShare*steady, capacity/burstRefill.Seconds()),
		tokens:   capacity,
	}
}

func (b *burstBudget) refill(now time.Time) {
	if !b.at.IsZero() && now.After(b.at) {
		b.tokens = min(b.capacity, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	}
	if b.at.IsZero() || now.After(b.at) {
		b.at = now
	}
}

// has reports whether n probes could be paid at now.
func (b *burstBudget) has(now time.Time, n int) bool {
	b.refill(now)
	return b.tokens >= float64(n)
}

// take pays one probe at now, if it can.
func (b *burstBudget) take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

package health

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Verdict is the health of one uplink.
type Verdict uint8

// Verdicts. The zero value is VerdictUnknown: no verdict yet.
const (
	VerdictUnknown Verdict = iota
	VerdictUp
	VerdictDegraded
	VerdictDown
)

// String is the verdict as status and logs show it: up, degraded, down
// or unknown.
func (v Verdict) String() string {
	switch v {
	case VerdictUp:
		return "up"
	case VerdictDegraded:
		return "degraded"
	case VerdictDown:
		return "down"
	}
	return "unknown"
}

// rank orders verdicts from worst to best; a move to a higher rank is an
// improvement.
func (v Verdict) rank() int {
	switch v {
	case VerdictDown:
		return 0
	case VerdictDegraded:
		return 1
	case VerdictUp:
		return 2
	}
	return -1
}

// TargetState is the rise/fall state of one target.
type TargetState uint8

// Target states.
const (
	TargetUnknown TargetState = iota
	TargetUp
	TargetDown
)

// String is the target's state as status shows it: up, down or unknown.
func (s TargetState) String() string {
	switch s {
	case TargetUp:
		return "up"
	case TargetDown:
		return "down"
	}
	return "unknown"
}

// targetTracker keeps the rise/fall state and the sliding window of one
// target. It is not safe for concurrent use; the Monitor's lock guards it.
type targetTracker struct {
	target Target
	name   string

	state       TargetState
	lastChange  time.Time
	okRun       int // consecutive successes
	failRun     int // consecutive failures
	probes      uint64
	lastErr     string
	lastProbe   time.Time     // when the latest result came in
	lastReply   time.Time     // when the latest success came in
	rttLast     time.Duration // the RTT of that success
	burstProbes uint64        // of probes, those sent in suspicion bursts
	lateReplies uint64        // replies that came after their probe's timeout
	rto         rtoEstimator
	lateBackoff int // doublings of the timeout since the last late reply, until a sample

	// Ring buffer of the last len(ok) results of steady probes (bursts'
	// are not in it, see observe).
	ok   []bool
	rtt  []time.Duration // valid where ok
	n    int             // results held, up to len(ok)
	next int             // index the next result goes to
}

func newTargetTracker(t Target) *targetTracker {
	return &targetTracker{
		target: t,
		name:   t.String(),
		ok:     make([]bool, t.Window),
		rtt:    make([]time.Duration, t.Window),
	}
}

// observe records one probe result and applies rise/fall. A burst
// probe's result counts toward rise and fall and its reply is an RTT
// sample, but it is not put in the window: the window's loss and RTT stay
// a sample of the steady probes (the last `window` of them), whose rate
// does not depend on how often bursts happen. The caller only passes
// replies that came before their timeout (Karn's rule). It reports whether
// the target's state changed.
func (tt *targetTracker) observe(now time.Time, rtt time.Duration, err error, burst bool) bool {
	tt.probes++
	tt.lastProbe = now
	success := err == nil
	if burst {
		tt.burstProbes++
	} else {
		tt.ok[tt.next] = success
		tt.rtt[tt.next] = rtt
		tt.next = (tt.next + 1) % len(tt.ok)
		if tt.n < len(tt.ok) {
			tt.n++
		}
	}
	old := tt.state
	if success {
		tt.okRun++
		tt.failRun = 0
		tt.lastErr = ""
		tt.lastReply, tt.rttLast = now, rtt
		tt.rto.sample(rtt)
		tt.lateBackoff = 0
		if tt.state != TargetUp && tt.okRun >= tt.target.Rise {
			// From down, the outage is already accounted for by the down
			// state; from unknown (the first rise after start or after a
			// target was reconfigured), the losses are those of paths
			// still coming up. Either way keep only the results since the
			// rise, so stale failures do not hold an uplink that is up in
			// degraded until the window has rolled them out.
			tt.clearWindowExceptLast(tt.okRun)
			tt.state = TargetUp
		}
	} else {
		tt.failRun++
		tt.okRun = 0
		tt.lastErr = err.Error()
		if tt.state != TargetDown && tt.failRun >= tt.target.Fall {
			tt.state = TargetDown
		}
	}
	if tt.state != old {
		tt.lastChange = now
		return true
	}
	return false
}

// timeout is the timeout of the target's next probe: its adaptive
// timeout, doubled for every consecutive loss past the fall-th (RFC 6298
// section 5.5). The first fall losses keep the estimate, so a silent path
// is confirmed in fall timeouts; past them the timeout grows toward the
// ceiling, so a path that only got slower than the estimate is measured
// again and the target can rise.
func (tt *targetTracker) timeout() time.Duration {
	return tt.rto.timeout(tt.target.TimeoutFloor, tt.target.Timeout, max(0, tt.failRun-tt.target.Fall+1)+tt.lateBackoff)
}

// late records the reply to an echo already judged lost: the path is slow,
// not dead. The loss stays counted in the window (the reply came too late
// to be of use), but it ends the run of consecutive losses, so an RTT that
// stepped above the timeout does not reach fall as a silent path would;
// and it doubles the timeout until the next reply in time (RFC 6298
// section 5.5). Karn's rule: its RTT is no sample.
func (tt *targetTracker) late() {
	tt.lateReplies++
	tt.failRun = 0
	tt.lateBackoff = min(tt.lateBackoff+1, 16)
}

// clearWindowExceptLast forgets all but the trailing successes of the
// window, at most k of them (burst successes count in okRun but are not in
// the window).
func (tt *targetTracker) clearWindowExceptLast(k int) {
	size := len(tt.ok)
	trailing := 0
	for trailing < min(k, tt.n) && tt.ok[(tt.next-1-trailing+2*size)%size] {
		trailing++
	}
	k = trailing
	start := (tt.next - k + size) % size
	ok := make([]bool, k)
	rtt := make([]time.Duration, k)
	for i := 0; i < k; i++ {
		ok[i], rtt[i] = tt.ok[(start+i)%size], tt.rtt[(start+i)%size]
	}
	copy(tt.ok, ok)
	copy(tt.rtt, rtt)
	tt.n, tt.next = k, k%size
}

// appendWindow adds the target's window to w.
func (tt *targetTracker) appendWindow(w *window) {
	for i := 0; i < tt.n; i++ {
		if tt.ok[i] {
			w.rtts = append(w.rtts, tt.rtt[i])
		} else {
			w.fails++
		}
		w.samples++
	}
}

// window accumulates results over one or more targets' windows. Its rtts
// slice is reused between evaluations so that steady-state probing does not
// allocate.
type window struct {
	samples int
	fails   int
	rtts    []time.Duration
}

func (w *window) reset() { w.samples, w.fails, w.rtts = 0, 0, w.rtts[:0] }

// figures returns the loss in percent and the mean and 95th percentile RTT
// of the successful samples. It sorts w.rtts in place.
func (w *window) figures() (loss float64, mean, p95 time.Duration) {
	if w.samples == 0 {
		return 0, 0, 0
	}
	loss = 100 * float64(w.fails) / float64(w.samples)
	if len(w.rtts) == 0 {
		return loss, 0, 0
	}
	var sum time.Duration
	for _, r := range w.rtts {
		sum += r
	}
	mean = sum / time.Duration(len(w.rtts))
	slices.Sort(w.rtts)
	// Nearest-rank percentile: the smallest value with at least 95% of the
	// samples at or below it.
	idx := (95*len(w.rtts)+99)/100 - 1
	return loss, mean, w.rtts[idx]
}

// uplinkTracker turns the probe results of one uplink's targets into a
// verdict. Carrier, BGP sessions and the hold-down are the controller's
// (controller.Decide): this verdict says only what the probes measure. It is not safe for concurrent use; the Monitor's
// lock guards it. Every method takes the time explicitly so the logic is
// tested with simulated time.
//
// evaluate runs on every probe result, so it only counts and compares: the
// human-readable reason is built by reasonText, from the fields evaluate
// leaves behind, when someone reads it (a verdict change, a Snapshot).
type uplinkTracker struct {
	name    string
	device  string
	cfg     Config
	targets []*targetTracker

	verdict Verdict
	since   time.Time
	// degraded is the hysteresis latch of the loss/RTT condition: set when a
	// figure reaches its enter threshold, cleared only when all figures are
	// below their leave thresholds.
	degraded bool
	// bursts counts the suspicion bursts started (see startBurstLocked),
	// burstsSuppressed those the budget refused or cut short.
	bursts           uint64
	burstsSuppressed uint64

	// What the last evaluation found, for reasonText: evaluated is false
	// before the first; cand is the verdict the probes called for and why
	// the rule that chose it.
	evaluated bool
	cand      Verdict
	why       whyCode

	// Figures of the last evaluation (over the up targets), made at
	// lastProbe; rttLast is those targets' latest reply, at lastReply.
	targetsUp   int
	targetsDown int
	loss        float64
	rttMean     time.Duration
	rttP95      time.Duration
	samples     int
	rttLast     time.Duration
	lastReply   time.Time
	lastProbe   time.Time

	scratch window
}

// whyCode names the rule that chose a candidate verdict.
type whyCode uint8

const (
	whyWaiting whyCode = iota
	whyTargetsDown
	whyDegraded
	whyUp
)

func newUplinkTracker(name, device string, cfg Config) *uplinkTracker {
	u := &uplinkTracker{name: name, device: device, cfg: cfg}
	total := 0
	for _, t := range cfg.Targets {
		u.targets = append(u.targets, newTargetTracker(t))
		total += t.Window
	}
	u.scratch.rtts = make([]time.Duration, 0, total)
	return u
}

// evaluate recomputes the verdict at now. It reports whether the verdict
// changed.
func (u *uplinkTracker) evaluate(now time.Time) bool {
	cand := u.candidate()
	u.evaluated, u.cand, u.lastProbe = true, cand, now
	// Unknown: not enough targets have a state to decide (before the first
	// verdict, or when a target with no result yet is needed for k of N):
	// keep what we have. Improvements are not held here: the controller's
	// hold-down (with backoff) is the only one, so a flapping uplink is
	// damped in one place.
	if cand == VerdictUnknown || cand == u.verdict {
		return false
	}
	u.verdict, u.since = cand, now
	return true
}

// candidate computes the verdict the probe results call for and sets the
// figures and u.why. It allocates nothing.
func (u *uplinkTracker) candidate() Verdict {
	up, down := 0, 0
	for _, t := range u.targets {
		switch t.state {
		case TargetUp:
			up++
		case TargetDown:
			down++
		}
	}
	u.targetsUp, u.targetsDown = up, down

	// Figures over the targets that are up: a target that is down already
	// counts against k-of-N and must not also make a healthy uplink look
	// degraded. With no target up, use all of them so the figures still say
	// something.
	w := &u.scratch
	w.reset()
	u.rttLast, u.lastReply = 0, time.Time{}
	for _, t := range u.targets {
		if t.state == TargetUp || up == 0 {
			t.appendWindow(w)
			if t.lastReply.After(u.lastReply) {
				u.rttLast, u.lastReply = t.rttLast, t.lastReply
			}
		}
	}
	u.samples = w.samples
	u.loss, u.rttMean, u.rttP95 = w.figures()

	n, need := len(u.targets), u.cfg.MinUp
	switch {
	case up < need && down > n-need:
		u.degraded, u.why = false, whyTargetsDown
		return VerdictDown
	case up < need:
		u.why = whyWaiting
		return VerdictUnknown
	}

	// Judge loss/RTT only on a window at least half full, so the first few
	// probes after start cannot declare degradation on their own.
	minSamples := 0
	for _, t := range u.targets {
		if t.state == TargetUp {
			minSamples += t.target.Window
		}
	}
	minSamples = (minSamples + 1) / 2
	if u.samples >= minSamples {
		lossHigh := u.loss >= u.cfg.LossEnter
		rttHigh := u.rttP95 >= u.cfg.RTTEnter
		lossLow := u.loss < u.cfg.LossLeave
		rttLow := u.rttP95 < u.cfg.RTTLeave
		switch {
		case !u.degraded && (lossHigh || rttHigh):
			u.degraded = true
		case u.degraded && lossLow && rttLow:
			u.degraded = false
		}
	}
	if u.degraded {
		u.why = whyDegraded
		return VerdictDegraded
	}
	u.why = whyUp
	return VerdictUp
}

// reasonText says why the uplink has its verdict, naming failed targets and
// the figures that count, as of the last evaluation.
func (u *uplinkTracker) reasonText() string {
	if !u.evaluated {
		return "no verdict yet"
	}
	why := u.describe()
	if u.cand == VerdictUnknown && u.verdict != VerdictUnknown {
		return fmt.Sprintf("%s; keeping %s until enough targets have results", why, u.verdict)
	}
	return why
}

// describe explains the last candidate verdict (u.why).
func (u *uplinkTracker) describe() string {
	n, need, up, down := len(u.targets), u.cfg.MinUp, u.targetsUp, u.targetsDown
	switch u.why {
	case whyTargetsDown:
		return fmt.Sprintf("%d of %d targets down (%s); need %d up", down, n, u.failedTargets(), need)
	case whyWaiting:
		return fmt.Sprintf("waiting for first results: %d of %d targets up, %d down", up, n, down)
	}
	figs := fmt.Sprintf("loss %.1f%%, rtt mean %v p95 %v over %d probes", u.loss, u.rttMean.Round(10*time.Microsecond), u.rttP95.Round(10*time.Microsecond), u.samples)
	kofn := fmt.Sprintf("%d of %d targets up", up, n)
	if down > 0 {
		kofn += fmt.Sprintf(" (down: %s)", u.failedTargets())
	}
	if u.why != whyDegraded {
		return kofn + "; " + figs
	}
	var why []string
	if u.loss >= u.cfg.LossLeave {
		why = append(why, fmt.Sprintf("loss %.1f%% (enter %g%%, leave below %g%%)", u.loss, u.cfg.LossEnter, u.cfg.LossLeave))
	}
	if u.rttP95 >= u.cfg.RTTLeave {
		why = append(why, fmt.Sprintf("rtt p95 %v (enter %v, leave below %v)", u.rttP95.Round(10*time.Microsecond), u.cfg.RTTEnter, u.cfg.RTTLeave))
	}
	if len(why) == 0 {
		why = append(why, "loss or rtt not yet judged below the leave thresholds")
	}
	return strings.Join(why, " and ") + "; " + kofn + "; " + figs
}

// failedTargets lists the targets that are down.
func (u *uplinkTracker) failedTargets() string {
	var failed []string
	for _, t := range u.targets {
		if t.state == TargetDown {
			failed = append(failed, t.name)
		}
	}
	return strings.Join(failed, ", ")
}

package health

import "time"

// rtoMargin is G in RTO = SRTT + max(G, 4*RTTVAR). RFC 6298 makes G the
// clock granularity; here it is the least margin above the smoothed RTT,
// because a path that varied by less than a few milliseconds while it was
// measured (a quiet lab, a steady minute) still varies by more on a busy
// host or after a queue builds: without it, a target with a very steady RTT
// would get a timeout a hair above that RTT.
const rtoMargin = 10 * time.Millisecond

// rtoEstimator is the retransmission-style timeout of one target (RFC 6298
// section 2), from the RTTs of its replies. The zero value has no sample
// yet. It is not safe for concurrent use; the Monitor's lock guards it.
type rtoEstimator struct {
	srtt, rttvar time.Duration
	sampled      bool
}

// sample takes the RTT of a reply. Karn's rule (RFC 6298 section 3) is the
// caller's: only replies that came before their probe's timeout are
// samples; a timed-out probe gives none.
func (e *rtoEstimator) sample(r time.Duration) {
	if !e.sampled {
		// RFC 6298 section 2.2.
		e.srtt, e.rttvar, e.sampled = r, r/2, true
		return
	}
	// RFC 6298 section 2.3, with alpha 1/8 and beta 1/4; RTTVAR first,
	// from the old SRTT.
	d := e.srtt - r
	if d < 0 {
		d = -d
	}
	e.rttvar = (3*e.rttvar + d) / 4
	e.srtt = (7*e.srtt + r) / 8
}

// bound is SRTT + max(G, 4*RTTVAR), unclamped: the RTT above which a reply
// is later than the path has led us to expect. ok is false before the
// first sample.
func (e *rtoEstimator) bound() (d time.Duration, ok bool) {
	if !e.sampled {
		return 0, false
	}
	return e.srtt + max(rtoMargin, 4*e.rttvar), true
}

// timeout is the timeout of the next probe: bound() clamped to [floor,
// ceiling], the ceiling before the first sample. backoff doubles it that
// many times (RFC 6298 section 5.5), still within the ceiling.
func (e *rtoEstimator) timeout(floor, ceiling time.Duration, backoff int) time.Duration {
	rto, ok := e.bound()
	if !ok {
		return ceiling
	}
	rto = max(rto, floor)
	for range backoff {
		if rto >= ceiling {
			break
		}
		rto *= 2
	}
	return min(rto, ceiling)
}

// jumped reports whether a reply of RTT r is later than bound(): a sign
// the path may be failing, worth a burst (see Monitor). Never before the
// first sample.
func (e *rtoEstimator) jumped(r time.Duration) bool {
	b, ok := e.bound()
	return ok && r > b
}

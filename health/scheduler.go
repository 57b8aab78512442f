package health

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// targetSched is the scheduling state of one target. The first fields are
// set by build and then only read.
type targetSched struct {
	u    *uplinkTracker
	tt   *targetTracker
	p    Prober
	echo *icmpProber // the ICMP prober, sent by the scheduler; or nil
	// When echo is nil: the scheduler's go-ahead to its worker, with the
	// probe's timeout.
	work chan time.Duration
	ub   *uplinkBurst // the uplink's burst state, shared with its other targets

	// Guarded by Monitor.mu.
	due       time.Time     // next tick: start + k * interval, as time.Ticker
	inflight  bool          // a probe is running; probes never overlap
	burst     bool          // the probe in flight is a burst probe
	sentEpoch uint64        // ub.epoch when the probe in flight was sent
	timeout   time.Duration // of the probe in flight
	seq       uint16        // echo sequence number of the probe in flight
	deadline  time.Time     // when the echo in flight times out
	// The last echoes judged lost, whose reply would be a late one.
	lost  [8]uint16
	nlost int
	// burstLeft is how many more probes the burst that runs owes this
	// target (see uplinkBurst), the next from burstAt: a round of the
	// uplink's burst, or at once if the target was busy at its round.
	burstLeft int
	burstAt   time.Time
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
// ends (like a time.Ticker with its buffered tick). Between ticks, a target
// in a suspicion burst (see uplinkBurst) is also due on the burst's rounds,
// burst_interval apart, until its part of the burst ends; the ticks stay
// where they were.
func (m *Monitor) schedule(ctx context.Context, g *generation, readers *sync.WaitGroup) {
	if len(g.scheds) == 0 {
		<-ctx.Done()
		return
	}
	// One timer, set to the next event (a tick, a burst round or an echo
	// deadline) after every wake-up. It is the clock's, so that tests run
	// this very path, and made after the first dispatch, so that it is
	// never armed for an event that does not exist.
	var timer Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
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
		if d := next.Sub(m.clock.Now()); timer == nil {
			timer = m.clock.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
		case <-m.kick:
		}
		now = m.clock.Now()
	}
}

// dispatch, at now, ends the echoes whose deadline has passed, starts every
// due probe that is not still running, appends the echo requests to send to
// sends, and returns the time of the next event: a tick, a burst round, or
// an echo deadline. It never returns a time before now for a probe in
// flight (that would spin); a probe that ends after its tick wakes the
// scheduler itself.
//
// Deadlines come first: a loss may start a burst, whose first round then
// leaves on this very wake-up. A burst round sends the probes of every
// target of the uplink that is owed one and idle; a target whose steady
// tick is due within burst_interval sends that tick's probe now instead (it
// goes in the window and counts as a burst probe too), so a round never
// puts a burst probe next to a steady one; other round probes are paid from
// the uplink's budget, and a target the budget cannot pay leaves the burst.
func (m *Monitor) dispatch(now time.Time, g *generation, sends []echoSend) ([]echoSend, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range g.scheds {
		if s.inflight && s.echo != nil && !now.Before(s.deadline) {
			s.inflight = false
			s.lost[s.nlost%len(s.lost)] = s.seq
			s.nlost++
			m.recordLocked(s, now, 0, fmt.Errorf("echo %v seq %d: %w (%v)",
				s.echo.pin.dst, s.seq, errNoReply, s.timeout))
		}
	}
	next := now.Add(time.Hour)
	for _, b := range g.bursts {
		round := false
		for _, s := range b.peers {
			if s.inflight {
				continue
			}
			tick := !now.Before(s.due)
			owed := s.burstDue(now)
			if owed && !tick && s.due.Sub(now) <= s.u.cfg.BurstInterval {
				tick = true // merged: the tick's probe leaves with the round
			}
			if owed && !tick && !b.budget.take(now) {
				s.burstLeft, owed = 0, false
				if !b.cut {
					b.cut = true
					s.u.burstsSuppressed++
				}
			}
			if !tick && !owed {
				continue
			}
			if owed {
				round = true
				s.burstAt = time.Time{} // set to the next round below
			}
			s.inflight, s.burst, s.sentEpoch = true, !tick, b.epoch
			if tick {
				s.due = nextTick(s.due, s.tt.target.Interval, now)
			}
			if s.burstLeft > 0 {
				// A tick during a burst is one of its probes: the burst
				// never adds a probe next to a steady one.
				s.burstLeft--
			}
			s.timeout = s.tt.timeout()
			if s.echo != nil {
				s.seq++
				if s.seq == 0 { // 0 is finish's "whatever is in flight"
					s.seq = 1
				}
				s.deadline = now.Add(s.timeout)
				sends = append(sends, echoSend{s, s.seq})
			} else {
				// The worker took the previous go-ahead before it finished,
				// so the channel is empty; never block under the lock.
				select {
				case s.work <- s.timeout:
				default:
				}
			}
		}
		if round {
			// A target that was busy at its round and goes now rejoins
			// the uplink's next round.
			if !b.next.After(now) {
				b.next = now.Add(b.peers[0].u.cfg.BurstInterval)
			}
			for _, s := range b.peers {
				if s.burstAt.IsZero() {
					s.burstAt = b.next
				}
			}
		}
		for _, s := range b.peers {
			// A probe in flight past its tick, or owed a burst probe, is
			// followed up by finish (or its deadline); before its
			// tick, the tick is still an event (the probe may well end
			// first).
			if !s.inflight || now.Before(s.due) {
				next = minTime(next, s.due)
			}
			if s.burstLeft > 0 && !s.inflight {
				next = minTime(next, s.burstAt)
			}
			if s.inflight && s.echo != nil {
				next = minTime(next, s.deadline)
			}
		}
	}
	// Every kick so far was sent under m.mu, before or during this
	// dispatch, about state it has just acted on: drop it rather than wake
	// for nothing.
	select {
	case <-m.kick:
	default:
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

// takeLost reports whether seq is one of the last echoes judged lost, and
// forgets it, so that a duplicated reply counts once.
func (s *targetSched) takeLost(seq uint16) bool {
	for i := range min(s.nlost, len(s.lost)) {
		if s.lost[i] == seq {
			s.lost[i] = 0 // never sent: 0 is skipped
			return true
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
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
	var timeout time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case timeout = <-s.work:
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		rtt, err := s.p.Probe(pctx)
		cancel()
		m.finish(ctx, s, 0, rtt, err)
	}
}

// finish records the result of s's probe in flight. For an echo, seq must
// be the sequence number in flight (0 stands for "whatever is in flight", a
// socket error); a reply to one of the last echoes judged lost is a late
// reply (see targetTracker.late), and any other is ignored. If the target's
// next tick is due meanwhile, or it is still owed burst probes, the
// scheduler is woken to start the next probe or set its timer for it (the
// timer leaves out the burst probes of targets in flight: most settle the
// burst with their reply, and a wake-up for them would be wasted).
func (m *Monitor) finish(ctx context.Context, s *targetSched, seq uint16, rtt time.Duration, err error) {
	if ctx.Err() != nil {
		return // shutting down: a cancelled probe says nothing about the path
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.echo != nil && seq != 0 && s.takeLost(seq) {
		s.tt.late()
		return
	}
	if !s.inflight || (s.echo != nil && seq != 0 && seq != s.seq) {
		return
	}
	s.inflight = false
	now := m.clock.Now()
	m.recordLocked(s, now, rtt, err)
	if !now.Before(s.due) || s.burstLeft > 0 {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// recordLocked records the result of s's probe that just ended (err nil:
// a reply after rtt, within the probe's timeout) and starts a burst if
// the result is suspect: a loss, or a reply later than the target's RTT
// estimate allows (SRTT + max(10ms, 4*RTTVAR)), on a target that is not
// down; a result that settles the suspicion ends the target's part of the
// burst that runs (see settleBurstLocked). m.mu must be held.
func (m *Monitor) recordLocked(s *targetSched, now time.Time, rtt time.Duration, err error) {
	u, tt := s.u, s.tt
	if m.onProbe != nil {
		m.onProbe(u.name, tt.name, rtt, err)
	}
	jumped := err == nil && tt.rto.jumped(rtt)
	suspect := tt.state != TargetDown && (err != nil || jumped)
	if tt.observe(now, rtt, err, s.burst) {
		m.log.Debug("health: target changed", logKeyUplink, u.name, logKeyTarget, tt.name,
			logKeyVerdict, tt.state.String(), logKeyError, tt.lastErr)
	}
	s.settleBurstLocked(err == nil && !jumped)
	// A result that took the target down confirmed the suspicion: no
	// burst for it.
	if suspect && tt.state != TargetDown && !u.cfg.NoBursts {
		m.startBurstLocked(s, now)
	}
	m.evaluateLocked(u, now)
}

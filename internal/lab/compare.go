package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// CompareScenario is one fault of the edge comparison (mhlab bench
// --edge). Unlike Scenario it expects nothing of the edge: the fault is
// held until the flow has been whole again in both directions for
// CompareClean, but at least MinHold and at most MaxHold; a direction
// still broken at MaxHold never recovered while the fault lasted.
type CompareScenario struct {
	Name             string
	Fault, Heal      func(context.Context) error
	MinHold, MaxHold time.Duration
	// MustLose says which directions (inbound, outbound) the fault must
	// cost packets: ISP-A carries the flow both ways when it starts
	// (CompareRun waits for that), so a direction set here that lost
	// nothing was missed, and CompareRun fails rather than report a
	// perfect failover. A link cut need not cost outbound packets: the
	// edge's kernel drops the routes via the downed link at once and
	// falls to another default without a loss.
	MustLose [2]bool
}

// CompareClean is how long the flow must be whole (at most 1 % lost) in
// both directions before a fault is removed early.
const CompareClean = time.Second

// CompareScenarios returns the faults the comparison applies with edge e:
// link cut, gray failure and 30 % loss on ISP-A, each held 2-12 s, and a
// planned restart of the edge software, watched for 15 s.
func (l *Lab) CompareScenarios(e Edge) []CompareScenario {
	none := func(context.Context) error { return nil }
	return []CompareScenario{
		{"link cut", l.CutISPA, l.RestoreISPA, 2 * time.Second, 12 * time.Second, [2]bool{true, false}},
		{"gray failure", l.GrayFailISPA, l.HealISPA, 2 * time.Second, 12 * time.Second, [2]bool{true, true}},
		{"loss 30%", func(ctx context.Context) error { return l.DegradeISPA(ctx, 30) }, l.HealISPA, 2 * time.Second, 12 * time.Second, [2]bool{true, true}},
		{"planned restart", e.Restart, none, 15 * time.Second, 15 * time.Second, [2]bool{}},
	}
}

// CompareDir is one direction's outcome of a comparison run.
type CompareDir struct {
	// Sent and Lost count the packets sent while the fault was held.
	Sent, Lost int
	// LossWindow is the longest run of lost packets, in wall-clock time
	// from the sending of its first packet to the sending of the next
	// packet that arrived. It is measured on the clock, not as packets
	// times the interval, because a loaded machine sends fewer packets
	// than the flow's rate asks for.
	LossWindow time.Duration
	// Unresolved is set when the flow was still broken (nothing arrived
	// in the last CompareClean) when the fault was removed: the edge never
	// moved this direction, and LossWindow is only how long the fault was
	// held.
	Unresolved bool
}

// CompareResult is one run of one scenario with one edge.
type CompareResult struct {
	Edge, Scenario string
	// Held is how long the fault was held.
	Held time.Duration
	// Path is how the run waited, after the timeline's lead-in, for both
	// directions of the flow to go through ISP-A alone before the fault.
	Path PathWait
	// Dirs are inbound (internet host to LAN host) and outbound.
	Dirs [2]CompareDir
	// Timeline runs from 1 s before the fault to a few seconds after
	// it was removed.
	Timeline Timeline
}

// sendClock maps a flow's sequence numbers to the time they were sent,
// from samples of the flow's counters (Flow.Mark) taken every few
// milliseconds.
type sendClock struct {
	mu sync.Mutex
	// t and n are guarded by mu: n[k] packets of each direction had been
	// sent at t[k].
	t []time.Time
	n [][2]uint64
}

func (c *sendClock) run(ctx context.Context, f *Flow) {
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	for {
		m := f.Mark()
		c.mu.Lock()
		c.t, c.n = append(c.t, time.Now()), append(c.n, m)
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// first returns the first sequence number of direction dir sent after the
// clock started.
func (c *sendClock) first(dir int) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[0][dir]
}

// at returns when packet seq of direction dir was sent, interpolating
// between samples.
func (c *sendClock) at(dir int, seq uint64) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := sort.Search(len(c.n), func(k int) bool { return c.n[k][dir] > seq })
	if k == 0 {
		return c.t[0]
	}
	if k == len(c.n) {
		return c.t[len(c.t)-1]
	}
	a, b := c.n[k-1][dir], c.n[k][dir]
	frac := float64(seq-a) / float64(b-a)
	return c.t[k-1].Add(time.Duration(frac * float64(c.t[k].Sub(c.t[k-1]))))
}

// CompareRun applies s with edge e while flow runs (internet host first,
// as in Measure), then removes it and waits until the lab is back to its
// steady state (transit via both ISPs, egress via ISP-A, flow whole) so
// that the next run starts alike.
func (l *Lab) CompareRun(ctx context.Context, flow *Flow, e Edge, s CompareScenario, timeout time.Duration) (CompareResult, error) {
	res := CompareResult{Edge: e.Name(), Scenario: s.Name}
	clean := uint64(CompareClean / flow.Interval())
	grace := uint64(100 * time.Millisecond / flow.Interval())
	var clock sendClock
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); clock.run(cctx, flow) }()
	defer func() { stop(); <-done }()
	if err := sleepCtx(ctx, time.Second); err != nil { // the timeline's lead-in
		return res, err
	}
	// The steady state (AwaitRouting) does not prove that the flow takes
	// ISP-A: wait until ISP-A's and ISP-B's own counters say so, and
	// apply the fault right after.
	var err error
	if res.Path, err = l.AwaitFlowViaISPA(ctx, flow, timeout); err != nil {
		return res, fmt.Errorf("%s: before the fault: %w", s.Name, err)
	}
	mark := flow.Mark()
	t0 := time.Now()
	if err := s.Fault(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", s.Name, err)
	}
	whole := func(now [2]uint64) bool {
		for i := range now {
			if now[i] < mark[i]+clean+grace {
				return false
			}
			r := flow.dirs[i].recv.Report(now[i]-grace-clean, now[i]-grace, flow.interval)
			if r.Lost*100 > r.Sent {
				return false
			}
		}
		return true
	}
	for {
		held := time.Since(t0)
		if held >= s.MaxHold || (held >= s.MinHold && whole(flow.Mark())) {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return res, err
		}
	}
	healed := time.Now()
	res.Held = healed.Sub(t0)
	end := flow.Mark()
	if err := s.Heal(ctx); err != nil {
		return res, fmt.Errorf("%s: heal: %w", s.Name, err)
	}
	if err := e.Repair(ctx); err != nil {
		return res, fmt.Errorf("%s: repair: %w", s.Name, err)
	}
	if _, err := l.AwaitRouting(ctx, TransitBoth, "eth-a", timeout); err != nil {
		return res, fmt.Errorf("%s: recovery: %w", s.Name, err)
	}
	deadline := time.Now().Add(timeout)
	for !whole(flow.Mark()) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%s: recovery: the flow did not become whole within %s", s.Name, timeout)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return res, err
		}
	}
	// The timeline shows the return too: up to 3 s after the repair.
	if err := sleepCtx(ctx, max(0, 3*time.Second-time.Since(healed))+200*time.Millisecond); err != nil {
		return res, err
	}
	now := flow.Mark()
	tl := Timeline{Bin: 10 * time.Millisecond, Start: -time.Second, Healed: res.Held, PerBin: int(10 * time.Millisecond / flow.interval)}
	nbins := int((time.Second + res.Held + 3*time.Second) / tl.Bin)
	for i, d := range flow.dirs {
		tl.Received[i] = make([]int, nbins)
		// From the clock's first sample: earlier packets have no sending
		// time (at would put them all at the first sample).
		from := clock.first(i)
		for seq := from; seq < now[i]-grace; seq++ {
			b := int((clock.at(i, seq).Sub(t0) - tl.Start) / tl.Bin)
			if b >= 0 && b < nbins && d.recv.Report(seq, seq+1, flow.interval).Received == 1 {
				tl.Received[i][b]++
			}
		}
		// Loss windows over the packets sent while the fault was held.
		to := end[i] - grace
		cd := CompareDir{Sent: int(to - mark[i])}
		var gapStart uint64
		inGap := false
		for seq := mark[i]; seq <= to; seq++ {
			got := seq == to || d.recv.Report(seq, seq+1, flow.interval).Received == 1
			if seq < to && !got {
				cd.Lost++
				if !inGap {
					gapStart, inGap = seq, true
				}
				continue
			}
			if inGap {
				cd.LossWindow = max(cd.LossWindow, clock.at(i, seq).Sub(clock.at(i, gapStart)))
				inGap = false
			}
		}
		cd.Unresolved = d.recv.Report(to-clean, to, flow.interval).Received == 0
		res.Dirs[i] = cd
	}
	res.Timeline = tl
	if err := missed(res.Dirs, s.MustLose); err != nil {
		return res, fmt.Errorf("%s: %w (before the fault: %s)", s.Name, err, res.Path.First)
	}
	return res, nil
}

// missed returns an error when a direction that mustLose says the fault
// must cost packets lost nothing: the fault did not hit the flow, and a 0
// would count as a perfect failover.
func missed(dirs [2]CompareDir, mustLose [2]bool) error {
	var none []string
	for i, name := range [2]string{"inbound", "outbound"} {
		if mustLose[i] && dirs[i].Lost == 0 {
			none = append(none, fmt.Sprintf("%s lost none of %d packets", name, dirs[i].Sent))
		}
	}
	if len(none) == 0 {
		return nil
	}
	return fmt.Errorf("the fault missed the flow: %s", strings.Join(none, ", "))
}

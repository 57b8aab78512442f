package gcpace

import (
	"errors"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Rule is how far the heap may grow past the live heap before the next
// collection.
type Rule struct {
	// Ratio is the heap goal as a multiple of the live heap (above 1).
	Ratio float64
	// Headroom is the least the heap may grow by between collections, in
	// bytes.
	Headroom uint64
}

// FullTables is the rule for a daemon that takes full tables: the heap may
// grow by 80 % of the live heap (GOGC=80) or 768 MiB, whichever is more.
// Measured with 1.2M routes in docs/benchmarks.md.
var FullTables = Rule{Ratio: 1.8, Headroom: 768 << 20}

// Limit is the memory limit the rule sets after a collection that found
// live bytes of live heap.
func (r Rule) Limit(live uint64) int64 {
	byRatio := float64(live) * r.Ratio
	floor := float64(live) + float64(r.Headroom)
	goal := math.Max(byRatio, floor)
	if goal >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(goal)
}

func (r Rule) validate() error {
	if !(r.Ratio > 1) || math.IsInf(r.Ratio, 0) {
		return errors.New("gcpace: Ratio must be a finite number above 1")
	}
	return nil
}

// ErrOperatorSet is returned by Start when GOGC or GOMEMLIMIT is set in the
// environment: the operator's choice stands.
var ErrOperatorSet = errors.New("gcpace: GOGC or GOMEMLIMIT is set in the environment; the collector is left as configured")

// Pacer applies a Rule after every collection until Stop. One at a time
// per process: the collector's settings are global.
type Pacer struct {
	rule Rule

	mu          sync.Mutex
	running     bool
	prevPercent int
	prevLimit   int64
	sample      []metrics.Sample
	limit       int64
	collections uint64
	// applied, when set (tests), receives each limit the pacer sets.
	applied chan<- int64
}

// sentinel is the object whose finalizer runs once per collection: large
// enough, and holding a pointer, so the runtime's tiny allocator does not
// batch it with other objects.
type sentinel struct {
	_ *byte
	_ [2]uint64
}

// Start turns GOGC off and paces the collector by rule. It returns
// ErrOperatorSet, and changes nothing, when GOGC or GOMEMLIMIT is set in
// the environment.
func Start(rule Rule) (*Pacer, error) {
	return start(rule, os.Getenv, nil)
}

func start(rule Rule, getenv func(string) string, applied chan<- int64) (*Pacer, error) {
	if err := rule.validate(); err != nil {
		return nil, err
	}
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return nil, ErrOperatorSet
	}
	p := &Pacer{
		rule:    rule,
		sample:  []metrics.Sample{{Name: "/gc/heap/live:bytes"}},
		applied: applied,
	}
	p.mu.Lock()
	p.running = true
	// The limit first, then GOGC off: never a moment with neither brake.
	p.prevLimit = debug.SetMemoryLimit(p.rule.Limit(p.liveLocked()))
	p.prevPercent = debug.SetGCPercent(-1)
	p.mu.Unlock()
	p.arm()
	return p, nil
}

// arm registers the finalizer that runs after the next collection.
func (p *Pacer) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if p.afterCollection() {
			p.arm()
		}
	})
}

// afterCollection runs on the runtime's finalizer goroutine once per
// collection: it reads the live heap and sets the next limit. It reports
// whether the pacer still runs.
func (p *Pacer) afterCollection() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return false
	}
	p.collections++
	p.limit = p.rule.Limit(p.liveLocked())
	debug.SetMemoryLimit(p.limit)
	if p.applied != nil {
		select {
		case p.applied <- p.limit:
		default:
		}
	}
	return true
}

// liveLocked is the live heap the last collection found (0 before the
// first).
func (p *Pacer) liveLocked() uint64 {
	metrics.Read(p.sample)
	if p.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return p.sample[0].Value.Uint64()
}

// Limit is the memory limit the pacer set last (0 before its first
// collection) and how many collections it has paced.
func (p *Pacer) Limit() (limit int64, collections uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.limit, p.collections
}

// Stop gives the collector back its settings from before Start. The
// pending finalizer finds the pacer stopped and ends the chain.
func (p *Pacer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	p.running = false
	// GOGC back first, then the limit: never a moment with neither brake.
	debug.SetGCPercent(p.prevPercent)
	debug.SetMemoryLimit(p.prevLimit)
}

package health

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
)

var errStale = errors.New("health: the monitor was reconfigured after this reconfiguration was prepared; prepare it again")

// Reconfiguration is a new set of uplinks prepared for a Monitor: checked,
// with its probers built. Commit puts it in force; Discard drops it.
type Reconfiguration struct {
	m       *Monitor
	epoch   uint64 // the Monitor's configuration it was prepared against
	uplinks []*uplinkTracker
	gen     *generation
	kept    []string // uplinks whose tracker carries over
	applied chan error
	done    bool
}

// Prepare checks uplinks and builds their probers, without changing what
// the Monitor probes: a reload can refuse it (Discard) until every other
// part of the configuration is accepted too, then Commit it. An uplink
// whose name, device and health block are unchanged keeps its verdict and
// its measurement windows across the change; a changed uplink starts over
// (verdict unknown, the controller keeps its last state meanwhile); a
// removed uplink disappears from snapshots. Calls to Prepare and Commit
// must not interleave with another reconfiguration's.
func (m *Monitor) Prepare(uplinks []Uplink) (*Reconfiguration, error) {
	m.mu.Lock()
	old := make(map[string]*uplinkTracker, len(m.uplinks))
	for _, u := range m.uplinks {
		old[u.name] = u
	}
	epoch := m.epoch
	m.mu.Unlock()
	r, err := m.build(uplinks, old)
	if err != nil {
		return nil, err
	}
	r.epoch = epoch
	return r, nil
}

// Kept names the uplinks whose verdict and windows carry over.
func (r *Reconfiguration) Kept() []string { return r.kept }

// Discard closes the prepared probers. It does nothing after Commit.
func (r *Reconfiguration) Discard() {
	if !r.done {
		r.done = true
		r.gen.close()
	}
}

// Commit puts r in force. With Run going, it hands r to Run and waits
// until Run has stopped the old probes (in-flight TCP, HTTP and DNS probes
// end within their timeout) and installed r; the new probes start right
// after. ctx only bounds the wait for Run to take r: once taken, Commit
// reports the outcome whatever ctx does. It fails if r was prepared
// against a configuration that is no longer in force, or the Monitor has
// stopped.
func (r *Reconfiguration) Commit(ctx context.Context) error {
	if r.done {
		return errors.New("health: reconfiguration already committed or discarded")
	}
	r.done = true
	m := r.m
	m.mu.Lock()
	switch {
	case m.stopped:
		m.mu.Unlock()
		r.gen.close()
		return errors.New("health: monitor stopped")
	case !m.started:
		// Run reads m.gen under the lock when it starts: installing here
		// is atomic with respect to that.
		old := m.gen
		err := m.installLocked(r)
		m.mu.Unlock()
		if err == nil {
			old.close()
		}
		return err
	}
	m.mu.Unlock()
	r.applied = make(chan error, 1)
	select {
	case m.reconf <- r:
	case <-m.runDone:
		r.gen.close()
		return errors.New("health: monitor stopped")
	case <-ctx.Done():
		r.gen.close()
		return ctx.Err()
	}
	// Run answers every reconfiguration it takes, after a bounded wait.
	return <-r.applied
}

// installLocked makes r the configuration in force, or closes its probers
// and fails if r is stale. m.mu must be held.
func (m *Monitor) installLocked(r *Reconfiguration) error {
	if r.epoch != m.epoch {
		r.gen.close()
		return errStale
	}
	m.uplinks, m.gen = r.uplinks, r.gen
	m.epoch++
	// The set of uplinks changed: readers of snapshots should look again.
	m.seq++
	select {
	case m.changed <- struct{}{}:
	default:
	}
	return nil
}

// build checks uplinks and builds their trackers, probers and schedules.
// An uplink of old with the same name, device and health configuration
// keeps its tracker (verdict, windows); every prober is new.
func (m *Monitor) build(uplinks []Uplink, old map[string]*uplinkTracker) (*Reconfiguration, error) {
	r := &Reconfiguration{m: m, gen: &generation{}}
	seen := map[string]bool{}
	for i, u := range uplinks {
		if u.Name == "" || seen[u.Name] {
			return nil, fmt.Errorf("health: uplinks[%d]: name %q is empty or repeated; give each uplink a unique name", i, u.Name)
		}
		seen[u.Name] = true
		cfg := u.Health
		if errs := cfg.Validate(); len(errs) > 0 {
			return nil, fmt.Errorf("health: uplink %s: %w", u.Name, errors.Join(errs...))
		}
	}
	for _, u := range uplinks {
		cfg := u.Health
		var ps []Prober
		for j, t := range cfg.Targets {
			p, err := m.newProber(u, t)
			if err != nil {
				closeAll(ps)
				r.gen.close()
				return nil, fmt.Errorf("health: uplink %s: targets[%d] %s: %w", u.Name, j, t, err)
			}
			ps = append(ps, p)
		}
		r.gen.probers = append(r.gen.probers, ps)
		ut := old[u.Name]
		if ut != nil && ut.device == u.Device && reflect.DeepEqual(ut.cfg, cfg) {
			r.kept = append(r.kept, u.Name)
		} else {
			// Another device or other targets and thresholds: the old
			// windows measured something else.
			ut = newUplinkTracker(u.Name, u.Device, cfg)
		}
		r.uplinks = append(r.uplinks, ut)
		first := len(r.gen.scheds)
		for j, tt := range ut.targets {
			s := &targetSched{u: ut, tt: tt, p: ps[j]}
			if ip, ok := ps[j].(*icmpProber); ok {
				s.echo = ip
			} else {
				s.work = make(chan time.Duration, 1)
			}
			r.gen.scheds = append(r.gen.scheds, s)
		}
		peers := r.gen.scheds[first:len(r.gen.scheds):len(r.gen.scheds)]
		b := newUplinkBurst(cfg, peers)
		for _, s := range peers {
			s.ub = b
		}
		r.gen.bursts = append(r.gen.bursts, b)
	}
	return r, nil
}

package nptv6

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/cilium/ebpf"
)

// Set implements Datapath.
func (e *EBPF) Set(ctx context.Context, ms []Mapping) ([]Mapping, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var reached []Mapping
	err := inNetns(e.opts.NetNS, func() error {
		err := e.setLocked(ms)
		var rerr error
		reached, rerr = e.mappingsLocked()
		return errors.Join(err, rerr)
	})
	return reached, err
}

// setLocked makes the datapath hold exactly ms. Runs inside the namespace.
func (e *EBPF) setLocked(ms []Mapping) error {
	tb, err := NewTable(ms)
	if err != nil {
		return fmt.Errorf("nptv6: ebpf set: %w", err)
	}
	ifaces, err := mappingInterfaces(ms)
	if err != nil {
		return err
	}
	// Interfaces first: a mapping is only live once its programs run.
	if err := e.attachAll(ifaces); err != nil {
		return err
	}
	have, err := e.readMaps()
	if err != nil {
		return err
	}
	want, err := planEntries(tb, ifaces, hairpinDevices(ms), have.out)
	if err != nil {
		return err
	}
	if err := e.resetCounters(want.fresh); err != nil {
		return err
	}
	// Add before delete. Inbound first, so replies to the first translated
	// packet are already understood. Each Put replaces one entry in one
	// step: a packet sees the old mapping or the new one.
	changed := 0
	for _, x := range []struct {
		m    *ebpf.Map
		have map[nptNptKey]nptNptMapping
		want []entry
	}{{e.objs.NptIn, have.in, want.in}, {e.objs.NptOut, have.out, want.out}} {
		n, err := putEntries(x.m, x.have, x.want)
		changed += n
		if err != nil {
			return err
		}
	}
	for _, x := range []struct {
		m    *ebpf.Map
		name string
		have map[nptNptKey]nptNptMapping
		want []entry
	}{{e.objs.NptOut, "npt_out", have.out, want.out}, {e.objs.NptIn, "npt_in", have.in, want.in}} {
		n, err := deleteUnwanted(x.m, x.name, x.have, x.want)
		changed += n
		if err != nil {
			return err
		}
	}
	stale, err := e.staleInterfaces(ifaces)
	if err != nil {
		return err
	}
	err = e.forgetInterfaces(stale)
	if changed > 0 {
		e.log.Info("nptv6 mappings set", logKeyCount, len(ms))
	}
	return err
}

// mappingInterfaces looks up every device ms names, by name.
func mappingInterfaces(ms []Mapping) (map[string]*net.Interface, error) {
	ifaces := map[string]*net.Interface{}
	for i, m := range ms {
		if _, ok := ifaces[m.Interface]; ok {
			continue
		}
		ifi, err := net.InterfaceByName(m.Interface)
		if err != nil {
			return nil, fmt.Errorf("nptv6: ebpf set: mappings[%d].interface %q: %w; create the device first or fix the name", i, m.Interface, err)
		}
		ifaces[m.Interface] = ifi
	}
	return ifaces, nil
}

// hairpinDevices tells, by device, whether any of its mappings hairpins.
func hairpinDevices(ms []Mapping) map[string]bool {
	hairpin := map[string]bool{}
	for _, m := range ms {
		hairpin[m.Interface] = hairpin[m.Interface] || m.Hairpin
	}
	return hairpin
}

// attachAll records each device's link-layer layout in npt_ifaces and makes
// sure both programs run on it.
func (e *EBPF) attachAll(ifaces map[string]*net.Interface) error {
	for _, ifi := range ifaces {
		var cfg nptNptIface
		if len(ifi.HardwareAddr) == 6 {
			cfg.L3off = 14
			cfg.Mac = [6]uint8(ifi.HardwareAddr)
		}
		if err := e.objs.NptIfaces.Put(uint32(ifi.Index), cfg); err != nil {
			return fmt.Errorf("nptv6: configure %s: %w", ifi.Name, err)
		}
		if err := e.attach(ifi); err != nil {
			return err
		}
	}
	return nil
}

// mapContents is what npt_out and npt_in hold.
type mapContents struct {
	out, in map[nptNptKey]nptNptMapping
}

func (e *EBPF) readMaps() (mapContents, error) {
	var c mapContents
	var err error
	if c.out, err = readEntries(e.objs.NptOut); err != nil {
		return c, fmt.Errorf("nptv6: read npt_out: %w", err)
	}
	if c.in, err = readEntries(e.objs.NptIn); err != nil {
		return c, fmt.Errorf("nptv6: read npt_in: %w", err)
	}
	return c, nil
}

// plannedEntries are the entries Set writes, and the counter slots it
// hands out afresh.
type plannedEntries struct {
	out, in []entry
	fresh   map[uint32]bool
}

// planEntries encodes every translator of tb and gives each a counter slot.
// A mapping already in npt_out unchanged (its device's hairpin summary
// aside) keeps its slot, and so its counters; any other takes the lowest
// slot no entry uses.
func planEntries(tb *Table, ifaces map[string]*net.Interface, hairpin map[string]bool, haveOut map[nptNptKey]nptNptMapping) (plannedEntries, error) {
	p := plannedEntries{fresh: map[uint32]bool{}}
	used := map[uint32]bool{}
	for _, v := range haveOut {
		used[v.Id] = true
	}
	next := uint32(0)
	for _, t := range tb.Translators() {
		dev := t.Mapping().Interface
		o, in := entries(t, ifaces[dev].Index, 0, hairpin[dev])
		id, reuse := uint32(0), false
		if v, ok := haveOut[o.key]; ok && sameMapping(v, o.val) {
			id, reuse = v.Id, true
		}
		if !reuse {
			for used[next] || p.fresh[next] {
				next++
			}
			if next >= maxMappings {
				return p, fmt.Errorf("nptv6: more than %d mappings; remove some", maxMappings)
			}
			id = next
			p.fresh[id] = true
		}
		o.val.Id, in.val.Id = id, id
		p.out, p.in = append(p.out, o), append(p.in, in)
	}
	return p, nil
}

// sameMapping tells whether have and want translate alike, whatever their
// slots and their devices' hairpin summaries.
func sameMapping(have, want nptNptMapping) bool {
	have.Id, want.Id = 0, 0
	have.Flags &^= flagIfaceHairpin
	want.Flags &^= flagIfaceHairpin
	return have == want
}

// resetCounters zeroes the counters of the fresh slots: a slot may have
// served a mapping that is gone.
func (e *EBPF) resetCounters(fresh map[uint32]bool) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	for id := range fresh {
		if err := e.objs.NptStats.Put(id, make([]nptNptCounters, ncpu)); err != nil {
			return fmt.Errorf("nptv6: reset counters %d: %w", id, err)
		}
	}
	return nil
}

// putEntries writes the entries of want that m (holding have) lacks or
// holds with another value, and returns how many it wrote.
func putEntries(m *ebpf.Map, have map[nptNptKey]nptNptMapping, want []entry) (int, error) {
	n := 0
	for _, w := range want {
		if v, ok := have[w.key]; ok && v == w.val {
			continue
		}
		if err := m.Put(w.key, w.val); err != nil {
			return n, fmt.Errorf("nptv6: write %s: %w", m, err)
		}
		n++
	}
	return n, nil
}

// deleteUnwanted deletes the entries of have that want does not list from
// m (named name in errors), and returns how many it deleted.
func deleteUnwanted(m *ebpf.Map, name string, have map[nptNptKey]nptNptMapping, want []entry) (int, error) {
	keep := map[nptNptKey]bool{}
	for _, w := range want {
		keep[w.key] = true
	}
	n := 0
	for k := range have {
		if keep[k] {
			continue
		}
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("nptv6: delete from %s: %w", name, err)
		}
		n++
	}
	return n, nil
}

// staleInterfaces lists the devices in npt_ifaces that no longer have
// mappings.
func (e *EBPF) staleInterfaces(ifaces map[string]*net.Interface) ([]uint32, error) {
	live := map[uint32]bool{}
	for _, ifi := range ifaces {
		live[uint32(ifi.Index)] = true
	}
	var k uint32
	var v nptNptIface
	var stale []uint32
	it := e.objs.NptIfaces.Iterate()
	for it.Next(&k, &v) {
		if !live[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("nptv6: read npt_ifaces: %w", err)
	}
	return stale, nil
}

// forgetInterfaces detaches the programs from the devices with these
// indexes (those still there) and removes them from npt_ifaces. It goes on
// past errors and returns them all.
func (e *EBPF) forgetInterfaces(idxs []uint32) error {
	var errs []error
	for _, idx := range idxs {
		if ifi, err := net.InterfaceByIndex(int(idx)); err == nil {
			errs = append(errs, e.detach(int(idx), ifi.Name))
		}
		if err := e.objs.NptIfaces.Delete(idx); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

package nptv6

//go:generate ./bpf/generate.sh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultPinPath is where the eBPF backend pins its programs, maps and
// links unless told otherwise. It must be on a bpffs mount.
const DefaultPinPath = "/sys/fs/bpf/multihomed/nptv6"

// EBPFOptions configure the eBPF backend.
type EBPFOptions struct {
	// PinPath is the bpffs directory holding the pinned maps, programs and
	// links; DefaultPinPath if empty. One directory per translator instance.
	PinPath string
	// NetNS is the path of the network namespace holding the uplinks, such
	// as /run/netns/edge. Empty means the process's own namespace.
	NetNS string
	// ForceTC attaches with a netlink tc filter (clsact + cls_bpf) even
	// where TCX (kernel 6.6+) is available.
	ForceTC bool
	// Logger receives attach, detach and mapping changes. Nil discards.
	Logger *slog.Logger
}

// EBPF is the Datapath that runs the translator as eBPF programs on the
// tc hooks of each uplink: npt_egress translates sources on egress,
// npt_ingress destinations on ingress. Programs attach with TCX where the
// kernel has it (6.6+) and with a cls_bpf filter otherwise.
//
// Mappings live in pinned BPF maps (LPM tries keyed by interface and
// prefix); each entry is replaced in one map update, so a packet sees either
// the old or the new mapping, never a mix. Maps, programs and TCX links stay
// pinned when the process exits, and a new process adopts them: NewEBPF
// reuses the pinned maps, and Set swaps the new program into the existing
// attachment in place.
type EBPF struct {
	opts EBPFOptions
	log  *slog.Logger
	// mu serialises Set, Purge and Close.
	mu sync.Mutex
	// objs holds the programs for Ethernet devices and the (shared, pinned)
	// maps; objsL3 the programs for devices without a link-layer header.
	objs, objsL3 nptObjects
}

var _ Datapath = (*EBPF)(nil)

// tcPriority and tcHandle identify our cls_bpf filters on the fallback path.
const (
	tcPriority = 0x6296
	tcHandle   = 0x6296
	// maxMappings must match MAX_MAPPINGS in bpf/npt.c.
	maxMappings = 1024
)

// NewEBPF loads the programs and opens (or creates and pins) the maps. It
// does not attach anything: Set does.
func NewEBPF(opts EBPFOptions) (*EBPF, error) {
	if opts.PinPath == "" {
		opts.PinPath = DefaultPinPath
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &EBPF{opts: opts, log: log.With(logKeyBackend, "ebpf")}
	if err := os.MkdirAll(opts.PinPath, 0o700); err != nil {
		return nil, fmt.Errorf("nptv6: create pin directory %s: %w (mount bpffs on /sys/fs/bpf)", opts.PinPath, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(opts.PinPath, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		return nil, fmt.Errorf("nptv6: pin path %s is not on a bpffs mount; mount one with 'mount -t bpf bpf /sys/fs/bpf' or set another pin path", opts.PinPath)
	}
	for _, v := range []struct {
		objs  *nptObjects
		l3off uint32
	}{{&e.objs, 14}, {&e.objsL3, 0}} {
		spec, err := loadNpt()
		if err != nil {
			return nil, fmt.Errorf("nptv6: load eBPF spec: %w", err)
		}
		if err := spec.Variables["l3off"].Set(v.l3off); err != nil {
			return nil, fmt.Errorf("nptv6: set l3off: %w", err)
		}
		err = spec.LoadAndAssign(v.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}})
		if err != nil {
			e.objs.Close()
			if errors.Is(err, ebpf.ErrMapIncompatible) {
				return nil, fmt.Errorf("nptv6: pinned maps in %s do not match this version's layout: %w; run 'nptv6ctl purge' (interrupts translation) and set the mappings again", opts.PinPath, err)
			}
			return nil, fmt.Errorf("nptv6: load eBPF objects (pins in %s): %w", opts.PinPath, err)
		}
	}
	// The programs are pinned too so that tools (bpftool) find them; the
	// attachments hold their own references.
	for name, p := range e.programs() {
		path := filepath.Join(opts.PinPath, name)
		_ = os.Remove(path) // the previous version's program, if any
		if err := p.Pin(path); err != nil {
			e.objs.Close()
			e.objsL3.Close()
			return nil, fmt.Errorf("nptv6: pin program %s: %w", path, err)
		}
	}
	return e, nil
}

func (e *EBPF) programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		"prog_egress": e.objs.NptEgress, "prog_ingress": e.objs.NptIngress,
		"prog_egress_l3": e.objsL3.NptEgress, "prog_ingress_l3": e.objsL3.NptIngress,
	}
}

func (e *EBPF) linkPin(ifname, dir string) string {
	return filepath.Join(e.opts.PinPath, "link_"+ifname+"_"+dir)
}

// attach makes sure both programs run on ifi. Runs inside the namespace.
func (e *EBPF) attach(ifi *net.Interface) error {
	objs := &e.objs
	if len(ifi.HardwareAddr) != 6 {
		objs = &e.objsL3 // no Ethernet header in front of IPv6
	}
	for _, h := range []struct {
		dir  string
		prog *ebpf.Program
		at   ebpf.AttachType
		tc   uint32
	}{
		{"egress", objs.NptEgress, ebpf.AttachTCXEgress, netlink.HANDLE_MIN_EGRESS},
		{"ingress", objs.NptIngress, ebpf.AttachTCXIngress, netlink.HANDLE_MIN_INGRESS},
	} {
		pin := e.linkPin(ifi.Name, h.dir)
		if !e.opts.ForceTC {
			ok, err := e.attachTCX(pin, ifi, h.prog, h.at, h.dir)
			if err != nil {
				return err
			}
			if ok {
				// Switching from a tc filter: the new attachment is in
				// place, remove the old one (both only ever translate
				// once: the second sees an already translated address).
				if err := removeTCFilters(ifi.Index, h.tc, ifi.Name); err != nil {
					return err
				}
				continue
			}
			e.log.Info("nptv6 TCX not supported, using tc", logKeyUplink, ifi.Name)
		}
		if err := e.attachTC(ifi, h.prog, h.tc, "npt_"+h.dir); err != nil {
			return err
		}
		removeTCXLink(pin)
	}
	return nil
}

// attachTCX adopts or creates the pinned TCX link for one hook. It returns
// false, nil when the kernel has no TCX.
func (e *EBPF) attachTCX(pin string, ifi *net.Interface, prog *ebpf.Program, at ebpf.AttachType, dir string) (bool, error) {
	done, err := e.adoptTCX(pin, ifi, prog)
	if err != nil || done {
		return done, err
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: at})
	if errors.Is(err, ebpf.ErrNotSupported) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("nptv6: attach %s program to %s with TCX: %w", dir, ifi.Name, err)
	}
	defer l.Close() // the pin keeps it attached
	if err := l.Pin(pin); err != nil {
		return false, fmt.Errorf("nptv6: pin %s link on %s: %w", dir, ifi.Name, err)
	}
	e.log.Info("nptv6 attached", logKeyUplink, ifi.Name, logKeyHook, dir, logKeyMode, "tcx")
	return true, nil
}

// removeTCXLink detaches and unpins the TCX link pinned at pin, if any.
func removeTCXLink(pin string) {
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		_ = l.Unpin()
		l.Close() // last reference: the program comes off
	}
}

// removeTCFilters deletes our cls_bpf filters under parent on the device.
func removeTCFilters(ifindex int, parent uint32, ifname string) error {
	lk, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil // device gone: its filters went with it
	}
	fs, err := netlink.FilterList(lk, parent)
	if err != nil {
		return nil // no clsact qdisc: no filters
	}
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Priority == tcPriority && strings.HasPrefix(bf.Name, "npt_") {
			if err := netlink.FilterDel(f); err != nil {
				return fmt.Errorf("nptv6: remove tc filter from %s: %w", ifname, err)
			}
		}
	}
	return nil
}

// adoptTCX reuses a pinned TCX link if it is still attached to ifi, swapping
// in prog (the program this process loaded). A stale pin is removed.
func (e *EBPF) adoptTCX(pin string, ifi *net.Interface, prog *ebpf.Program) (bool, error) {
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		_ = os.Remove(pin)
		return false, nil
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil || info.TCX() == nil || int(info.TCX().Ifindex) != ifi.Index {
		// The device went away (and with it the attachment) or was
		// recreated with another index.
		_ = l.Unpin()
		return false, nil
	}
	if err := l.Update(prog); err != nil {
		return false, fmt.Errorf("nptv6: update program on %s (%s): %w", ifi.Name, pin, err)
	}
	return true, nil
}

func (e *EBPF) attachTC(ifi *net.Interface, prog *ebpf.Program, parent uint32, name string) error {
	// Already there with this very program: nothing to do (Set runs on
	// every reconcile).
	if info, err := prog.Info(); err == nil {
		if id, ok := info.ID(); ok {
			if lk, err := netlink.LinkByIndex(ifi.Index); err == nil {
				if fs, err := netlink.FilterList(lk, parent); err == nil {
					for _, f := range fs {
						if bf, ok := f.(*netlink.BpfFilter); ok && bf.Priority == tcPriority && bf.Id == int(id) {
							return nil
						}
					}
				}
			}
		}
	}
	q := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifi.Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscReplace(q); err != nil {
		return fmt.Errorf("nptv6: add clsact qdisc to %s: %w", ifi.Name, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifi.Index, Parent: parent, Handle: tcHandle,
			Protocol: unix.ETH_P_ALL, Priority: tcPriority,
		},
		Fd: prog.FD(), Name: name, DirectAction: true,
	}
	// Replace swaps the program in one step: no gap in translation.
	if err := netlink.FilterReplace(f); err != nil {
		return fmt.Errorf("nptv6: add tc filter %s to %s: %w", name, ifi.Name, err)
	}
	e.log.Info("nptv6 attached", logKeyUplink, ifi.Name, logKeyHook, name, logKeyMode, "tc")
	return nil
}

// detach removes our programs from the interface with this index (and name,
// for the link pins). Runs inside the namespace.
func (e *EBPF) detach(ifindex int, ifname string) error {
	var errs []error
	for _, dir := range []string{"egress", "ingress"} {
		removeTCXLink(e.linkPin(ifname, dir))
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_EGRESS, netlink.HANDLE_MIN_INGRESS} {
		errs = append(errs, removeTCFilters(ifindex, parent, ifname))
	}
	e.log.Info("nptv6 detached", logKeyUplink, ifname)
	return errors.Join(errs...)
}

// entry is one mapping as stored in the maps.
type entry struct {
	key nptNptKey
	val nptNptMapping
}

func prefixKey(ifindex int, p netip.Prefix) nptNptKey {
	a := p.Addr().As16()
	return nptNptKey{Prefixlen: uint32(32 + p.Bits()), Ifindex: uint32(ifindex), Addr: [8]uint8(a[:8])}
}

func prefixBytes(p netip.Prefix) [8]uint8 {
	a := p.Addr().As16()
	return [8]uint8(a[:8])
}

func maskBytes(bits int) [8]uint8 {
	var m [8]uint8
	binary.BigEndian.PutUint64(m[:], ^uint64(0)<<(64-bits))
	return m
}

// wireAdj stores adj so that its bytes in memory are in network byte
// order, as the program adds it to words loaded straight from the packet.
func wireAdj(adj uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], adj)
	return binary.NativeEndian.Uint16(b[:])
}

// Flags of npt_mapping, as in bpf/npt.c.
const (
	flagHairpin      = 1 // this mapping hairpins
	flagIfaceHairpin = 2 // some mapping on the device hairpins (npt_out)
)

// entries returns the out and in entries for t on ifindex, with slot id.
// ifaceHairpin tells whether any mapping on the device hairpins.
func entries(t *Translator, ifindex int, id uint32, ifaceHairpin bool) (out, in entry) {
	m := t.Mapping()
	var flags uint8
	if m.Hairpin {
		flags = flagHairpin
	}
	base := nptNptMapping{
		Mask: maskBytes(t.Bits()), Bits: uint8(t.Bits()), Flags: flags,
		InternalBits: uint8(m.Internal.Bits()), ExternalBits: uint8(m.External.Bits()), Id: id,
	}
	out = entry{key: prefixKey(ifindex, t.Internal()), val: base}
	if ifaceHairpin {
		out.val.Flags |= flagIfaceHairpin
	}
	out.val.From, out.val.To, out.val.Adj = prefixBytes(t.Internal()), prefixBytes(t.External()), wireAdj(t.Adjustment())
	in = entry{key: prefixKey(ifindex, t.External()), val: base}
	in.val.From, in.val.To, in.val.Adj = prefixBytes(t.External()), prefixBytes(t.Internal()), wireAdj(^t.Adjustment())
	return out, in
}

func readEntries(m *ebpf.Map) (map[nptNptKey]nptNptMapping, error) {
	out := map[nptNptKey]nptNptMapping{}
	var k nptNptKey
	var v nptNptMapping
	it := m.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	return out, it.Err()
}

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

func (e *EBPF) setLocked(ms []Mapping) error {
	tb, err := NewTable(ms)
	if err != nil {
		return fmt.Errorf("nptv6: ebpf set: %w", err)
	}
	ifaces := map[string]*net.Interface{}
	for i, m := range ms {
		if _, ok := ifaces[m.Interface]; ok {
			continue
		}
		ifi, err := net.InterfaceByName(m.Interface)
		if err != nil {
			return fmt.Errorf("nptv6: ebpf set: mappings[%d].interface %q: %w; create the device first or fix the name", i, m.Interface, err)
		}
		ifaces[m.Interface] = ifi
	}
	hairpin := map[string]bool{}
	for _, m := range ms {
		hairpin[m.Interface] = hairpin[m.Interface] || m.Hairpin
	}
	// Interfaces first: a mapping is only live once its programs run.
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

	haveOut, err := readEntries(e.objs.NptOut)
	if err != nil {
		return fmt.Errorf("nptv6: read npt_out: %w", err)
	}
	haveIn, err := readEntries(e.objs.NptIn)
	if err != nil {
		return fmt.Errorf("nptv6: read npt_in: %w", err)
	}
	used := map[uint32]bool{}
	for _, v := range haveOut {
		used[v.Id] = true
	}
	var wantOut, wantIn []entry
	fresh := map[uint32]bool{}
	next := uint32(0)
	for _, t := range tb.Translators() {
		ifindex := ifaces[t.Mapping().Interface].Index
		o, in := entries(t, ifindex, 0, hairpin[t.Mapping().Interface])
		// Keep the slot (and so the counters) of a mapping that is
		// already there unchanged (its device's hairpin summary aside).
		id, reuse := uint32(0), false
		if v, ok := haveOut[o.key]; ok {
			cmp, want := v, o.val
			cmp.Id = 0
			cmp.Flags &^= flagIfaceHairpin
			want.Flags &^= flagIfaceHairpin
			if cmp == want {
				id, reuse = v.Id, true
			}
		}
		if !reuse {
			for used[next] || fresh[next] {
				next++
			}
			if next >= maxMappings {
				return fmt.Errorf("nptv6: more than %d mappings; remove some", maxMappings)
			}
			id = next
			fresh[id] = true
		}
		o.val.Id, in.val.Id = id, id
		wantOut, wantIn = append(wantOut, o), append(wantIn, in)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	for id := range fresh {
		if err := e.objs.NptStats.Put(id, make([]nptNptCounters, ncpu)); err != nil {
			return fmt.Errorf("nptv6: reset counters %d: %w", id, err)
		}
	}
	// Add before delete. Inbound first, so replies to the first translated
	// packet are already understood. Each Put replaces one entry in one
	// step: a packet sees the old mapping or the new one.
	changed := 0
	for _, x := range []struct {
		m    *ebpf.Map
		have map[nptNptKey]nptNptMapping
		want []entry
	}{{e.objs.NptIn, haveIn, wantIn}, {e.objs.NptOut, haveOut, wantOut}} {
		for _, w := range x.want {
			if v, ok := x.have[w.key]; ok && v == w.val {
				continue
			}
			if err := x.m.Put(w.key, w.val); err != nil {
				return fmt.Errorf("nptv6: write %s: %w", x.m, err)
			}
			changed++
		}
	}
	keep := func(want []entry) map[nptNptKey]bool {
		s := map[nptNptKey]bool{}
		for _, w := range want {
			s[w.key] = true
		}
		return s
	}
	keepOut, keepIn := keep(wantOut), keep(wantIn)
	for k := range haveOut {
		if !keepOut[k] {
			if err := e.objs.NptOut.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("nptv6: delete from npt_out: %w", err)
			}
			changed++
		}
	}
	for k := range haveIn {
		if !keepIn[k] {
			if err := e.objs.NptIn.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("nptv6: delete from npt_in: %w", err)
			}
			changed++
		}
	}
	// Detach from interfaces that no longer have mappings.
	var k uint32
	var v nptNptIface
	var stale []uint32
	it := e.objs.NptIfaces.Iterate()
	for it.Next(&k, &v) {
		found := false
		for _, ifi := range ifaces {
			if uint32(ifi.Index) == k {
				found = true
			}
		}
		if !found {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("nptv6: read npt_ifaces: %w", err)
	}
	var errs []error
	for _, idx := range stale {
		name := ""
		if ifi, err := net.InterfaceByIndex(int(idx)); err == nil {
			name = ifi.Name
		}
		if name != "" {
			errs = append(errs, e.detach(int(idx), name))
		}
		if err := e.objs.NptIfaces.Delete(idx); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	if changed > 0 {
		e.log.Info("nptv6 mappings set", logKeyCount, len(ms))
	}
	return errors.Join(errs...)
}

// mappingsLocked reads the mappings back from npt_out. Runs inside the
// namespace.
func (e *EBPF) mappingsLocked() ([]Mapping, error) {
	have, err := readEntries(e.objs.NptOut)
	if err != nil {
		return nil, fmt.Errorf("nptv6: read npt_out: %w", err)
	}
	var ms []Mapping
	for k, v := range have {
		m, err := decodeMapping(k, v)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return sortMappings(ms), nil
}

func decodeMapping(k nptNptKey, v nptNptMapping) (Mapping, error) {
	name := fmt.Sprintf("ifindex:%d", k.Ifindex)
	if ifi, err := net.InterfaceByIndex(int(k.Ifindex)); err == nil {
		name = ifi.Name
	}
	var in, ex [16]byte
	copy(in[:], v.From[:])
	copy(ex[:], v.To[:])
	return Mapping{
		Interface: name,
		Internal:  netip.PrefixFrom(netip.AddrFrom16(in), int(v.InternalBits)).Masked(),
		External:  netip.PrefixFrom(netip.AddrFrom16(ex), int(v.ExternalBits)).Masked(),
		Hairpin:   v.Flags&flagHairpin != 0,
	}, nil
}

// Mappings implements Datapath.
func (e *EBPF) Mappings(ctx context.Context) ([]Mapping, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ms []Mapping
	err := inNetns(e.opts.NetNS, func() (err error) {
		ms, err = e.mappingsLocked()
		return err
	})
	return ms, err
}

// Counters implements Datapath: per-CPU counters summed.
func (e *EBPF) Counters(ctx context.Context) ([]Counters, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Counters
	err := inNetns(e.opts.NetNS, func() error {
		have, err := readEntries(e.objs.NptOut)
		if err != nil {
			return err
		}
		for k, v := range have {
			m, err := decodeMapping(k, v)
			if err != nil {
				return err
			}
			var per []nptNptCounters
			if err := e.objs.NptStats.Lookup(v.Id, &per); err != nil {
				return fmt.Errorf("nptv6: read counters of %s: %w", m, err)
			}
			c := Counters{Mapping: m}
			for _, p := range per {
				c.OutPackets += p.OutPackets
				c.OutBytes += p.OutBytes
				c.OutDrops += p.OutDrops
				c.InPackets += p.InPackets
				c.InBytes += p.InBytes
				c.InDrops += p.InDrops
				c.Hairpinned += p.Hairpinned
			}
			out = append(out, c)
		}
		return nil
	})
	byMapping := map[Mapping]Counters{}
	var ms []Mapping
	for _, c := range out {
		byMapping[c.Mapping] = c
		ms = append(ms, c.Mapping)
	}
	sorted := make([]Counters, 0, len(out))
	for _, m := range sortMappings(ms) {
		sorted = append(sorted, byMapping[m])
	}
	return sorted, err
}

// Close implements Datapath: it closes this process's handles. Pinned
// objects stay and translation goes on.
func (e *EBPF) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.objs.Close(), e.objsL3.Close())
}

// Purge implements Datapath: it detaches the programs from every interface
// it configured, unpins everything and removes the pin directory.
func (e *EBPF) Purge(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	err := inNetns(e.opts.NetNS, func() error {
		var k uint32
		var v nptNptIface
		var idx []uint32
		it := e.objs.NptIfaces.Iterate()
		for it.Next(&k, &v) {
			idx = append(idx, k)
		}
		for _, i := range idx {
			name := ""
			if ifi, err := net.InterfaceByIndex(int(i)); err == nil {
				name = ifi.Name
			}
			errs = append(errs, e.detach(int(i), name))
		}
		return it.Err()
	})
	errs = append(errs, err)
	// Link pins of devices that are gone.
	links, _ := filepath.Glob(filepath.Join(e.opts.PinPath, "link_*"))
	for _, p := range links {
		if l, err := link.LoadPinnedLink(p, nil); err == nil {
			l.Unpin()
			l.Close()
		} else {
			os.Remove(p)
		}
	}
	for _, m := range []*ebpf.Map{e.objs.NptOut, e.objs.NptIn, e.objs.NptStats, e.objs.NptIfaces} {
		errs = append(errs, m.Unpin())
	}
	for _, p := range e.programs() {
		errs = append(errs, p.Unpin())
	}
	if err := os.Remove(e.opts.PinPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("nptv6: remove %s: %w", e.opts.PinPath, err))
	}
	return errors.Join(errs...)
}

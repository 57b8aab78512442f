package nptv6

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The programs' life: load and pin (NewEBPF), attach to and detach from an
// uplink's tc hooks with TCX or a cls_bpf filter, and remove everything
// (Purge).

// tcPriority and tcHandle identify our cls_bpf filters on the fallback path.
const (
	tcPriority = 0x6296
	tcHandle   = 0x6296
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

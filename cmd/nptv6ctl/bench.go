package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/nptv6"
)

// bench measures forwarded packets per second through the edge namespace of
// a lab topology with no translator, with the eBPF backend and with
// ip6t_NPT, in the same run, and the CPU each packet costs.
//
// Method: every configuration gets its own topology, and all of them exist
// for the whole run. A sender thread pinned to one CPU in a topology's LAN
// namespace writes the same 80-byte UDP frame to the edge with sendmmsg on a
// packet socket (qdisc bypass). Over veth the whole path (edge ingress,
// routing, the translator, edge egress, delivery to the out namespace,
// where a blackhole route drops it) runs in that thread's softirq context
// on that CPU, so the thread's own CPU time (getrusage RUSAGE_THREAD) is the
// cost of the packet including the generator; and packets per second =
// packets counted on the out interface / wall time. A round sends one burst
// through every topology, in rotating order, back to back; each
// configuration is compared with the plain burst of the same round (a
// fraction of a second apart), so the machine's speed drifting between
// rounds (steal time, other load) cancels out of the ratios. The medians of
// those per-round ratios are the result.
func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	packets := fs.Int("packets", 50_000, "packets per burst")
	rounds := fs.Int("rounds", 60, "rounds (each sends one burst through every configuration)")
	cpu := fs.Int("cpu", runtime.NumCPU()-1, "CPU the sender is pinned to")
	batch := fs.Int("batch", 64, "frames per sendmmsg call")
	configList := fs.String("configs", "plain,tcx-noop,ebpf,ip6t_NPT", "configurations to measure, from plain, tcx-noop (a program that does nothing, attached where the translator's egress program goes: the cost of the hook alone), ebpf, ebpf-tc (tc filter instead of TCX), ip6t_NPT, ip6t_NPT-legacy; plain is always measured")
	progStats := fs.Bool("progstats", false, "also measure the eBPF program's own run time (kernel BPF stats; slows the eBPF bursts, so not for the pps figures)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *packets < 1000 || *rounds < 1 || *batch < 1 {
		return errors.New("bench: -packets must be at least 1000, -rounds and -batch at least 1")
	}
	configs := []string{"plain"}
	for _, c := range strings.Split(*configList, ",") {
		switch c {
		case "plain":
		case "tcx-noop", "ebpf", "ebpf-tc", "ip6t_NPT", "ip6t_NPT-legacy":
			if !slices.Contains(configs, c) {
				configs = append(configs, c)
			}
		default:
			return fmt.Errorf("bench: -configs: unknown configuration %q", c)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("bench: needs root (network namespaces, eBPF, ip6tables)")
	}
	edges := map[string]*benchEdge{}
	defer func() {
		for _, e := range edges {
			e.close()
		}
	}()
	for _, c := range configs {
		e, err := newBenchEdge(ctx, c, *packets/10, *batch, *cpu)
		if err != nil {
			return fmt.Errorf("bench: set up %s: %w", c, err)
		}
		edges[c] = e
	}
	res := map[string][]sample{}
	for r := 0; r < *rounds; r++ {
		for i := range configs {
			c := configs[(i+r)%len(configs)]
			s, err := edges[c].burst(ctx, *packets, *batch, *cpu, *progStats)
			if err != nil {
				return fmt.Errorf("bench: round %d %s: %w", r+1, c, err)
			}
			res[c] = append(res[c], s)
		}
		fmt.Printf("round %2d", r+1)
		for _, c := range configs {
			s := res[c][r]
			fmt.Printf("  %s %.0f pps %.0f ns", c, s.pps, s.cpuNs)
			if s.progNs > 0 {
				fmt.Printf(" (program %.0f ns/run)", s.progNs)
			}
		}
		fmt.Println()
	}
	fmt.Print(benchReport(configs, res, *rounds, *packets, *cpu))
	return nil
}

// benchReport summarizes the samples: per configuration the median and
// spread of its absolute figures, and the median (min..max) of its per-round
// ratios against the plain burst of the same round.
func benchReport(configs []string, res map[string][]sample, rounds, packets, cpu int) string {
	pps := func(s sample) float64 { return s.pps }
	cpuNs := func(s sample) float64 { return s.cpuNs }
	ratios := func(c string, f func(sample) float64) []float64 {
		v := make([]float64, 0, len(res[c]))
		for r, s := range res[c] {
			v = append(v, 100*f(s)/f(res["plain"][r]))
		}
		return v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d rounds, %d packets per burst, sender pinned to CPU %d\n", rounds, packets, cpu)
	fmt.Fprintf(&b, "absolute figures, median (min..max) over rounds:\n")
	fmt.Fprintf(&b, "%-16s %29s %23s %20s\n", "config", "pps", "CPU ns/pkt", "forwarded/sent")
	for _, c := range configs {
		p, n := summarize(values(res[c], pps)), summarize(values(res[c], cpuNs))
		var sent, rx uint64
		for _, s := range res[c] {
			sent, rx = sent+s.sent, rx+s.rx
		}
		fmt.Fprintf(&b, "%-16s %8.0f (%8.0f..%8.0f) %6.0f (%6.0f..%6.0f) %10d/%d\n", c, p.med, p.min, p.max, n.med, n.min, n.max, rx, sent)
	}
	fmt.Fprintf(&b, "against plain forwarding in the same round, median (min..max) of the per-round ratios:\n")
	fmt.Fprintf(&b, "%-16s %24s %24s %23s\n", "config", "pps vs plain", "CPU vs plain", "CPU over plain")
	for _, c := range configs[1:] {
		p, n := summarize(ratios(c, pps)), summarize(ratios(c, cpuNs))
		d := make([]float64, 0, len(res[c]))
		for r, s := range res[c] {
			d = append(d, s.cpuNs-res["plain"][r].cpuNs)
		}
		o := summarize(d)
		fmt.Fprintf(&b, "%-16s %6.1f%% (%5.1f..%5.1f%%) %6.1f%% (%5.1f..%5.1f%%) %+5.0f ns (%+.0f..%+.0f)\n", c,
			p.med, p.min, p.max, n.med, n.min, n.max, o.med, o.min, o.max)
	}
	if res["ebpf"] != nil && res["ip6t_NPT"] != nil {
		v := make([]float64, 0, rounds)
		for r := range res["ebpf"] {
			v = append(v, 100*res["ebpf"][r].pps/res["ip6t_NPT"][r].pps)
		}
		s := summarize(v)
		fmt.Fprintf(&b, "ebpf vs ip6t_NPT pps, same round: %.1f%% (%.1f..%.1f%%)\n", s.med, s.min, s.max)
	}
	return b.String()
}

func values(ss []sample, f func(sample) float64) []float64 {
	v := make([]float64, 0, len(ss))
	for _, s := range ss {
		v = append(v, f(s))
	}
	return v
}

type spread struct{ med, min, max float64 }

// summarize returns the median (the mean of the middle two for an even
// count), minimum and maximum of v, which must not be empty.
func summarize(v []float64) spread {
	v = slices.Clone(v)
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + m) / 2
	}
	return spread{med: m, min: v[0], max: v[len(v)-1]}
}

type sample struct {
	sent, rx uint64
	pps      float64
	cpuNs    float64
	progNs   float64 // average run time of npt_egress, with -progstats
}

// benchEdge is one configuration's topology with its translator set up.
type benchEdge struct {
	config  string
	topo    *lab.Translator
	dp      nptv6.Datapath
	pinPath string
	frame   []byte
	cleanup []func()
}

func (e *benchEdge) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
}

// newBenchEdge builds a topology for config, installs the translator and
// warms the path up (neighbour entries, caches, the JIT'd program) with
// warm packets.
func newBenchEdge(ctx context.Context, config string, warm, batch, cpu int) (_ *benchEdge, err error) {
	topo, err := lab.UpTranslator(ctx, "")
	if err != nil {
		return nil, err
	}
	e := &benchEdge{config: config, topo: topo}
	e.cleanup = append(e.cleanup, func() { topo.Close() })
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	// The out namespace drops the stream silently (no ICMPv6 errors).
	sink := netip.MustParseAddr("2001:db8:9000::99")
	if _, err := topo.Out.Run(ctx, "ip", "-6", "route", "add", "blackhole", "2001:db8:9000::/64"); err != nil {
		return nil, err
	}
	switch config {
	case "tcx-noop":
		l, err := attachNoop(topo)
		if err != nil {
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() { l.Close() })
	case "ebpf", "ebpf-tc":
		dir, err := os.MkdirTemp("", "nptv6-bench-")
		if err != nil {
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() { os.Remove(dir) })
		if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
			return nil, fmt.Errorf("mount bpffs: %w", err)
		}
		e.cleanup = append(e.cleanup, func() { unix.Unmount(dir, unix.MNT_DETACH) })
		e.pinPath = filepath.Join(dir, "nptv6")
		e.dp, err = nptv6.NewEBPF(nptv6.EBPFOptions{PinPath: e.pinPath, NetNS: topo.Edge.Path(), ForceTC: config == "ebpf-tc"})
		if err != nil {
			return nil, err
		}
	case "ip6t_NPT", "ip6t_NPT-legacy":
		cmd := "ip6tables"
		if config == "ip6t_NPT-legacy" {
			cmd = "ip6tables-legacy"
		}
		e.dp, err = nptv6.NewKernel(nptv6.KernelOptions{NetNS: topo.Edge.Path(), Command: cmd})
		if err != nil {
			return nil, err
		}
	}
	if e.dp != nil {
		dp := e.dp
		e.cleanup = append(e.cleanup, func() { dp.Close() }, func() { dp.Purge(context.Background()) })
		ms := []nptv6.Mapping{{Interface: topo.EdgeUpIf, Internal: lab.NPTInternal, External: lab.NPTPA}}
		if _, err := dp.Set(ctx, ms); err != nil {
			return nil, err
		}
	}
	e.frame = benchFrame(topo, sink)
	if _, _, err := blast(topo, e.frame, warm, batch, cpu); err != nil {
		return nil, err
	}
	return e, nil
}

// burst sends packets frames through the edge and measures them. It checks
// that every packet passed the translator (it was really in the path).
func (e *benchEdge) burst(ctx context.Context, packets, batch, cpu int, progStats bool) (sample, error) {
	var prog *ebpf.Program
	var run0, cnt0 uint64
	if progStats && e.pinPath != "" {
		st, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			return sample{}, fmt.Errorf("enable BPF stats: %w", err)
		}
		defer st.Close()
		if prog, err = ebpf.LoadPinnedProgram(filepath.Join(e.pinPath, "prog_egress"), nil); err != nil {
			return sample{}, err
		}
		defer prog.Close()
		run0, cnt0 = progRun(prog)
	}
	var out0 uint64
	if e.dp != nil {
		n, err := translated(ctx, e.dp)
		if err != nil {
			return sample{}, err
		}
		out0 = n
	}
	rx0, err := lab.RxPackets(ctx, e.topo.Out, e.topo.OutIf)
	if err != nil {
		return sample{}, err
	}
	wall, cpuTime, err := blast(e.topo, e.frame, packets, batch, cpu)
	if err != nil {
		return sample{}, err
	}
	var progNs float64
	if prog != nil {
		run1, cnt1 := progRun(prog)
		if cnt1 > cnt0 {
			progNs = float64(run1-run0) / float64(cnt1-cnt0)
		}
	}
	rx1, err := lab.RxPackets(ctx, e.topo.Out, e.topo.OutIf)
	if err != nil {
		return sample{}, err
	}
	if e.dp != nil {
		out1, err := translated(ctx, e.dp)
		if err != nil {
			return sample{}, err
		}
		if out1-out0 < uint64(packets) {
			return sample{}, fmt.Errorf("%s translated %d packets of %d sent: the translator was not in the path", e.config, out1-out0, packets)
		}
	}
	rx := rx1 - rx0
	if rx == 0 {
		return sample{}, errors.New("nothing was forwarded")
	}
	return sample{sent: uint64(packets), rx: rx, pps: float64(rx) / wall.Seconds(), cpuNs: float64(cpuTime.Nanoseconds()) / float64(rx), progNs: progNs}, nil
}

// attachNoop attaches, with TCX, a program that returns TC_ACT_UNSPEC at
// once to the egress of the topology's uplink: forwarding with the hook in
// the path but no work done in it.
func attachNoop(topo *lab.Translator) (link.Link, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "bench_noop",
		Type:         ebpf.SchedCLS,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, -1), asm.Return()},
	})
	if err != nil {
		return nil, fmt.Errorf("load the no-op program: %w", err)
	}
	defer prog.Close()
	var l link.Link
	err = topo.Edge.Do(func() error {
		ifi, err := net.InterfaceByName(topo.EdgeUpIf)
		if err != nil {
			return err
		}
		l, err = link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXEgress})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach the no-op program: %w", err)
	}
	return l, nil
}

// translated returns the outbound packets dp has translated, over all its
// mappings.
func translated(ctx context.Context, dp nptv6.Datapath) (uint64, error) {
	cs, err := dp.Counters(ctx)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range cs {
		n += c.OutPackets
	}
	return n, nil
}

// progRun returns the program's cumulative run time (ns) and run count.
func progRun(p *ebpf.Program) (uint64, uint64) {
	st, err := p.Stats()
	if err != nil {
		return 0, 0
	}
	return uint64(st.Runtime), st.RunCount
}

// benchFrame is an Ethernet frame from the LAN host to the sink through the
// edge, carrying a UDP datagram with a correct checksum.
func benchFrame(topo *lab.Translator, dst netip.Addr) []byte {
	const payload = 18
	f := make([]byte, 14+40+8+payload)
	copy(f[0:], topo.EdgeLANMAC)
	copy(f[6:], topo.LANMAC)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	ip := f[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 8+payload)
	ip[6], ip[7] = 17, 64
	s, d := lab.NPTLANHost.As16(), dst.As16()
	copy(ip[8:], s[:])
	copy(ip[24:], d[:])
	u := ip[40:]
	binary.BigEndian.PutUint16(u[0:], 40000)
	binary.BigEndian.PutUint16(u[2:], 9)
	binary.BigEndian.PutUint16(u[4:], 8+payload)
	copy(u[8:], "nptv6 bench frame!")
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	add(ip[8:40])
	sum += 8 + payload + 17
	add(u)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(u[6:], ^uint16(sum))
	return f
}

type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// blast sends n copies of frame from the LAN namespace on a thread pinned
// to cpu and returns the wall time and the thread's CPU time.
func blast(topo *lab.Translator, frame []byte, n, batch, cpu int) (wall, cpuTime time.Duration, err error) {
	err = topo.LAN.Do(func() error {
		ifi, err := net.InterfaceByName(topo.LANIf)
		if err != nil {
			return err
		}
		var old, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return err
		}
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin to CPU %d: %w", cpu, err)
		}
		defer unix.SchedSetaffinity(0, &old)
		proto := uint16(unix.ETH_P_IPV6<<8&0xff00 | unix.ETH_P_IPV6>>8)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: 0, Ifindex: ifi.Index}); err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
		iov := unix.Iovec{Base: &frame[0]}
		iov.SetLen(len(frame))
		msgs := make([]mmsghdr, batch)
		for i := range msgs {
			msgs[i].hdr.Iov = &iov
			msgs[i].hdr.SetIovlen(1)
		}
		var ru0, ru1 unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru0); err != nil {
			return err
		}
		t0 := time.Now()
		for sent := 0; sent < n; {
			k := min(batch, n-sent)
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(k), 0, 0, 0)
			if errno != 0 {
				if errno == unix.EAGAIN || errno == unix.ENOBUFS || errno == unix.EINTR {
					continue
				}
				return fmt.Errorf("sendmmsg: %w", errno)
			}
			sent += int(r)
		}
		wall = time.Since(t0)
		runtime.KeepAlive(frame)
		runtime.KeepAlive(msgs)
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru1); err != nil {
			return err
		}
		cpuTime = time.Duration(unix.TimevalToNsec(ru1.Utime) - unix.TimevalToNsec(ru0.Utime) +
			unix.TimevalToNsec(ru1.Stime) - unix.TimevalToNsec(ru0.Stime))
		return nil
	})
	return wall, cpuTime, err
}

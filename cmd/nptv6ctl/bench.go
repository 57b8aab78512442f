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
	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/nptv6"
	"github.com/multihomed/multihomed/nptv6/lab"
)

// bench measures forwarded packets per second through the edge namespace of
// a lab topology with no translator, with the eBPF backend and with
// ip6t_NPT, in the same run, and the CPU each packet costs.
//
// Method: a sender thread pinned to one CPU in the LAN namespace writes the
// same 80-byte UDP frame to the edge with sendmmsg on a packet socket
// (qdisc bypass). Over veth the whole path (edge ingress, routing, the
// translator, edge egress, delivery to the out namespace, where a blackhole
// route drops it) runs in that thread's softirq context on that CPU, so the
// thread's own CPU time (getrusage RUSAGE_THREAD) is the cost of the packet
// including the generator, unaffected by other processes; and packets per
// second = packets counted on the out interface / wall time. Each
// measurement gets a fresh topology; configurations are interleaved round
// by round in rotating order; the medians are reported.
func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	packets := fs.Int("packets", 500_000, "packets per measurement")
	rounds := fs.Int("rounds", 5, "rounds (each measures every configuration once)")
	cpu := fs.Int("cpu", runtime.NumCPU()-1, "CPU the sender is pinned to")
	batch := fs.Int("batch", 64, "frames per sendmmsg call")
	configList := fs.String("configs", "plain,ebpf,ip6t_NPT", "configurations to measure, from plain, ebpf, ebpf-tc (tc filter instead of TCX), ip6t_NPT, ip6t_NPT-legacy; plain is always measured")
	progStats := fs.Bool("progstats", false, "also measure the eBPF program's own run time (kernel BPF stats; slows the eBPF runs, so not for the pps figures)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("bench: needs root (network namespaces, eBPF, ip6tables)")
	}
	configs := []string{"plain"}
	for _, c := range strings.Split(*configList, ",") {
		switch c {
		case "plain":
		case "ebpf", "ebpf-tc", "ip6t_NPT", "ip6t_NPT-legacy":
			configs = append(configs, c)
		default:
			return fmt.Errorf("bench: -configs: unknown configuration %q", c)
		}
	}
	res := map[string][]sample{}
	for r := 0; r < *rounds; r++ {
		for i := range configs {
			c := configs[(i+r)%len(configs)]
			s, err := measure(ctx, c, *packets, *batch, *cpu, *progStats)
			if err != nil {
				return fmt.Errorf("bench: round %d %s: %w", r+1, c, err)
			}
			fmt.Printf("round %d  %-15s %9.0f pps  %6.0f ns CPU/pkt  (%d sent, %d forwarded)", r+1, c, s.pps, s.cpuNs, s.sent, s.rx)
			if s.progNs > 0 {
				fmt.Printf("  egress program %.0f ns/run", s.progNs)
			}
			fmt.Println()
			res[c] = append(res[c], s)
		}
	}
	med := func(c string, f func(sample) float64) float64 {
		v := make([]float64, 0, len(res[c]))
		for _, s := range res[c] {
			v = append(v, f(s))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	best := func(c string, f func(sample) float64, better func(a, b float64) bool) float64 {
		v := f(res[c][0])
		for _, s := range res[c][1:] {
			if better(f(s), v) {
				v = f(s)
			}
		}
		return v
	}
	pps := func(s sample) float64 { return s.pps }
	cpuNs := func(s sample) float64 { return s.cpuNs }
	higher := func(a, b float64) bool { return a > b }
	lower := func(a, b float64) bool { return a < b }
	fmt.Printf("\n%d rounds, %d packets each, sender pinned to CPU %d; median (best):\n", *rounds, *packets, *cpu)
	fmt.Printf("%-15s %20s %20s %16s %16s\n", "config", "pps", "CPU ns/pkt", "pps vs plain", "CPU vs plain")
	for _, c := range configs {
		fmt.Printf("%-15s %10.0f (%7.0f) %12.0f (%5.0f) %8.1f%% (%3.0f%%) %8.1f%% (%3.0f%%)\n", c,
			med(c, pps), best(c, pps, higher), med(c, cpuNs), best(c, cpuNs, lower),
			100*med(c, pps)/med("plain", pps), 100*best(c, pps, higher)/best("plain", pps, higher),
			100*med(c, cpuNs)/med("plain", cpuNs), 100*best(c, cpuNs, lower)/best("plain", cpuNs, lower))
	}
	if !slices.Contains(configs, "ebpf") || !slices.Contains(configs, "ip6t_NPT") {
		return nil
	}
	fmt.Printf("\neBPF vs ip6t_NPT pps: %.1f%% (best %.1f%%); CPU over plain per packet: eBPF %+.0f ns (best %+.0f), ip6t_NPT %+.0f ns (best %+.0f)\n",
		100*med("ebpf", pps)/med("ip6t_NPT", pps), 100*best("ebpf", pps, higher)/best("ip6t_NPT", pps, higher),
		med("ebpf", cpuNs)-med("plain", cpuNs), best("ebpf", cpuNs, lower)-best("plain", cpuNs, lower),
		med("ip6t_NPT", cpuNs)-med("plain", cpuNs), best("ip6t_NPT", cpuNs, lower)-best("plain", cpuNs, lower))
	return nil
}

type sample struct {
	sent, rx uint64
	pps      float64
	cpuNs    float64
	progNs   float64 // average run time of npt_egress, with -progstats
}

func measure(ctx context.Context, config string, packets, batch, cpu int, progStats bool) (sample, error) {
	topo, err := lab.New(ctx)
	if err != nil {
		return sample{}, err
	}
	defer topo.Close()
	// The out namespace drops the stream silently (no ICMPv6 errors).
	sink := netip.MustParseAddr("2001:db8:9000::99")
	if _, err := topo.Exec(ctx, topo.Out, "ip", "-6", "route", "add", "blackhole", "2001:db8:9000::/64"); err != nil {
		return sample{}, err
	}
	ms := []nptv6.Mapping{{Interface: topo.EdgeUpIf, Internal: lab.Internal, External: lab.PA}}
	var dp nptv6.Datapath
	var pinPath string
	switch config {
	case "ebpf", "ebpf-tc":
		dir, err := os.MkdirTemp("", "nptv6-bench-")
		if err != nil {
			return sample{}, err
		}
		defer os.Remove(dir)
		if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
			return sample{}, fmt.Errorf("mount bpffs: %w", err)
		}
		defer unix.Unmount(dir, unix.MNT_DETACH)
		pinPath = filepath.Join(dir, "nptv6")
		dp, err = nptv6.NewEBPF(nptv6.EBPFOptions{PinPath: pinPath, NetNS: lab.Path(topo.Edge), ForceTC: config == "ebpf-tc"})
		if err != nil {
			return sample{}, err
		}
	case "ip6t_NPT", "ip6t_NPT-legacy":
		cmd := "ip6tables"
		if config == "ip6t_NPT-legacy" {
			cmd = "ip6tables-legacy"
		}
		dp, err = nptv6.NewKernel(nptv6.KernelOptions{NetNS: lab.Path(topo.Edge), Command: cmd})
		if err != nil {
			return sample{}, err
		}
	}
	if dp != nil {
		defer dp.Close()
		defer dp.Purge(context.Background())
		if _, err := dp.Set(ctx, ms); err != nil {
			return sample{}, err
		}
	}
	frame := benchFrame(topo, sink)
	// Warm up caches, neighbour entries and the JIT'd program.
	if _, _, err := blast(topo, frame, packets/20, batch, cpu); err != nil {
		return sample{}, err
	}
	var prog *ebpf.Program
	var run0, cnt0 uint64
	if progStats && pinPath != "" {
		st, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			return sample{}, fmt.Errorf("enable BPF stats: %w", err)
		}
		defer st.Close()
		if prog, err = ebpf.LoadPinnedProgram(filepath.Join(pinPath, "prog_egress"), nil); err != nil {
			return sample{}, err
		}
		defer prog.Close()
		run0, cnt0 = progRun(prog)
	}
	rx0, err := topo.RxPackets(ctx, topo.Out, topo.OutIf)
	if err != nil {
		return sample{}, err
	}
	wall, cpuTime, err := blast(topo, frame, packets, batch, cpu)
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
	rx1, err := topo.RxPackets(ctx, topo.Out, topo.OutIf)
	if err != nil {
		return sample{}, err
	}
	if dp != nil {
		cs, err := dp.Counters(ctx)
		if err != nil {
			return sample{}, err
		}
		if len(cs) != 1 || cs[0].OutPackets < uint64(packets) {
			return sample{}, fmt.Errorf("%s translated %+v, want at least %d: the translator was not in the path", config, cs, packets)
		}
	}
	rx := rx1 - rx0
	if rx == 0 {
		return sample{}, errors.New("nothing was forwarded")
	}
	return sample{sent: uint64(packets), rx: rx, pps: float64(rx) / wall.Seconds(), cpuNs: float64(cpuTime.Nanoseconds()) / float64(rx), progNs: progNs}, nil
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
func benchFrame(topo *lab.Topology, dst netip.Addr) []byte {
	const payload = 18
	f := make([]byte, 14+40+8+payload)
	copy(f[0:], topo.EdgeLANMAC)
	copy(f[6:], topo.LANMAC)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IPV6)
	ip := f[14:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 8+payload)
	ip[6], ip[7] = 17, 64
	s, d := lab.LANHost.As16(), dst.As16()
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
func blast(topo *lab.Topology, frame []byte, n, batch, cpu int) (wall, cpuTime time.Duration, err error) {
	err = lab.Do(lab.Path(topo.LAN), func() error {
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

package nptv6

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// probe is one crafted packet for the differential test.
type probe struct {
	name string
	dir  Direction
	pkt  []byte // the IPv6 packet; contains a unique marker
	// kernelDiffers names the documented reason ip6t_NPT's output differs
	// from RFC 6296 (and so from the core and the eBPF backend).
	kernelDiffers string
}

var (
	diffPrefix56In = netip.MustParsePrefix("fd7a:5e1d:9d00:4200::/56")
	diffPrefix56Ex = netip.MustParsePrefix("2001:db8:2001:4200::/56")
)

func diffMappings(topo *lab.Translator) []Mapping {
	return []Mapping{
		{Interface: topo.EdgeUpIf, Internal: lab.NPTInternal, External: lab.NPTPA},
		{Interface: topo.EdgeUpIf, Internal: diffPrefix56In, External: diffPrefix56Ex},
	}
}

func marked(name string, i int) string { return fmt.Sprintf("NPTDIFF-%02d-%s", i, name) }

// diffProbes builds the packet set: every translation case, every RFC drop,
// ICMPv6 errors both ways, and packets no mapping covers.
func diffProbes(t *testing.T, tb *Table) []probe {
	a := netip.MustParseAddr
	t48, t56 := tb.Translators()[0], tb.Translators()[1]
	ext := func(tr *Translator, in netip.Addr) netip.Addr {
		e, err := tr.Outbound(in)
		if err != nil {
			t.Fatalf("Outbound(%s): %v", in, err)
		}
		return e
	}
	w := ^t48.Adjustment() // the subnet whose adjusted word is 0xFFFF
	ffffSubnet := netip.AddrFrom16([16]byte{0xfd, 0x7a, 0x5e, 0x1d, 0x9c, 0x00, byte(w >> 8), byte(w), 15: 9})
	extLAN := ext(t48, lab.NPTLANHost)
	var ps []probe
	add := func(name string, dir Direction, kd string, build func(m string) []byte) {
		ps = append(ps, probe{name: name, dir: dir, kernelDiffers: kd, pkt: build(marked(name, len(ps)))})
	}
	udp := func(src, dst netip.Addr) func(string) []byte {
		return func(m string) []byte { return udpPacket(src, dst, m) }
	}
	add("out-udp", Outbound, "", udp(lab.NPTLANHost, lab.NPTOutHost))
	add("out-tcp-syn", Outbound, "", func(m string) []byte {
		seg := make([]byte, 20+len(m))
		binary.BigEndian.PutUint16(seg[0:], 40001)
		binary.BigEndian.PutUint16(seg[2:], 443)
		seg[12] = 5 << 4
		seg[13] = 0x02 // SYN
		binary.BigEndian.PutUint16(seg[14:], 65535)
		copy(seg[20:], m)
		return ipv6Packet(a("fd7a:5e1d:9c00:2::5"), lab.NPTOutHost, protoTCP, seg, 16)
	})
	add("out-echo", Outbound, "", func(m string) []byte {
		return ipv6Packet(lab.NPTLANHost, lab.NPTOutHost, protoICMPv6, append([]byte{128, 0, 0, 0, 0, 1, 0, 1}, m...), 2)
	})
	add("out-word-becomes-ffff", Outbound, "", udp(ffffSubnet, lab.NPTOutHost))
	add("out-56-skips-ffff", Outbound, "", udp(a("fd7a:5e1d:9d00:4242:ffff:1:2:3"), lab.NPTOutHost))
	add("out-56-iid-all-ones", Outbound, "ip6t_NPT drops it too, but first rewrites the prefix of the source and then sends a Parameter Problem to that half-rewritten address, out of the uplink; we drop silently", udp(a("fd7a:5e1d:9d00:4242:ffff:ffff:ffff:ffff"), lab.NPTOutHost))
	add("out-icmp-error", Outbound, "", func(m string) []byte {
		return icmpError(lab.NPTLANHost, lab.NPTOutHost, 1, udpPacket(lab.NPTOutHost, lab.NPTLANHost, m))
	})
	add("out-icmp-error-foreign-embedded", Outbound, "", func(m string) []byte {
		return icmpError(lab.NPTLANHost, lab.NPTOutHost, 3, udpPacket(lab.NPTOutHost, a("fd7a:5e1e::1"), m))
	})
	add("out-unmapped-source", Outbound, "", udp(a("fd7a:5e1e::5"), lab.NPTOutHost))
	add("out-error-from-non-internal-source", Outbound, "ip6t_NPT only sees packets with an internal source, so an error sent by a router with a global address (the edge itself: Packet Too Big) keeps the internal address it quotes", func(m string) []byte {
		return icmpError(a("2001:db8:1000:2::7"), lab.NPTOutHost, 2, udpPacket(lab.NPTOutHost, lab.NPTLANHost, m))
	})
	add("out-subnet-ffff", Outbound, "ip6t_NPT translates subnet 0xFFFF; RFC 6296 sections 3.4 and 4.2 make it unmappable", udp(a("fd7a:5e1d:9c00:ffff::5"), lab.NPTOutHost))
	add("out-zero-iid", Outbound, "ip6t_NPT translates the Subnet-Router anycast address (all-zero IID)", udp(a("fd7a:5e1d:9c00:7::"), lab.NPTOutHost))
	// Not an error type: neither translator may touch the body.
	add("out-icmp-type-100", Outbound, "", func(m string) []byte {
		return icmpError(lab.NPTLANHost, lab.NPTOutHost, 100, udpPacket(lab.NPTOutHost, lab.NPTLANHost, m))
	})

	add("in-udp", Inbound, "", udp(lab.NPTOutHost, extLAN))
	add("in-56", Inbound, "", udp(lab.NPTOutHost, ext(t56, a("fd7a:5e1d:9d00:4242:ffff:1:2:3"))))
	add("in-icmp-dest-unreach", Inbound, "", func(m string) []byte {
		return icmpError(lab.NPTOutRouter, extLAN, 1, udpPacket(extLAN, lab.NPTOutHost, m))
	})
	add("in-icmp-packet-too-big", Inbound, "", func(m string) []byte {
		e := icmpError(lab.NPTOutRouter, extLAN, 2, udpPacket(extLAN, lab.NPTOutHost, m))
		return e
	})
	add("in-icmp-time-exceeded-56", Inbound, "", func(m string) []byte {
		e56 := ext(t56, a("fd7a:5e1d:9d00:4201::77"))
		return icmpError(lab.NPTOutRouter, e56, 3, udpPacket(e56, lab.NPTOutHost, m))
	})
	add("in-icmp-error-foreign-embedded", Inbound, "", func(m string) []byte {
		return icmpError(lab.NPTOutRouter, extLAN, 1, udpPacket(a("2001:db8:5555::1"), lab.NPTOutHost, m))
	})
	add("in-subnet-ffff", Inbound, "ip6t_NPT translates subnet 0xFFFF; RFC 6296 section 3.3 discards it", udp(lab.NPTOutHost, a("2001:db8:1001:ffff::5")))
	add("in-zero-iid", Inbound, "ip6t_NPT translates the Subnet-Router anycast address (all-zero IID)", udp(lab.NPTOutHost, a("2001:db8:1001:5::")))
	return ps
}

// expected applies the core (the reference) and forwarding (hop limit - 1)
// to p; nil means the packet must not come out.
func expected(tb *Table, iface string, p probe) []byte {
	q := bytes.Clone(p.pkt)
	if r := tb.Process(q, iface, p.dir); r.Verdict == Drop {
		return nil
	}
	q[7]--
	return q
}

// wire is a pair of packet sockets: one injecting frames toward the edge,
// one capturing what the edge forwards.
type wire struct {
	sendFD, recvFD int
	sendIf         int
	dstMAC         net.HardwareAddr
	srcMAC         net.HardwareAddr
}

func openPacketSocket(t *testing.T, ns *netns.NS, ifname string) (fd, ifindex int) {
	t.Helper()
	inNS(t, ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		proto := int(htons(unix.ETH_P_IPV6))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}); err != nil {
			unix.Close(fd)
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd, ifindex
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (w *wire) send(pkt []byte) error {
	frame := make([]byte, 14+len(pkt))
	copy(frame[0:], w.dstMAC)
	copy(frame[6:], w.srcMAC)
	binary.BigEndian.PutUint16(frame[12:], unix.ETH_P_IPV6)
	copy(frame[14:], pkt)
	return unix.Sendto(w.sendFD, frame, 0, &unix.SockaddrLinklayer{Ifindex: w.sendIf, Halen: 6, Addr: [8]byte(append(bytes.Clone(w.dstMAC), 0, 0))})
}

// sendInOrder sends the packets from one thread pinned to one CPU. Over
// veth each packet is queued on the sending CPU's backlog all the way
// through the edge, so a later packet (the sentinel) cannot overtake an
// earlier one even when softirq processing is deferred under load.
func sendInOrder(w *wire, pkts ...[]byte) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var old, one unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		for cpu := 0; cpu < 1024; cpu++ {
			if old.IsSet(cpu) {
				one.Set(cpu)
				break
			}
		}
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		var err error
		for _, p := range pkts {
			if err = w.send(p); err != nil {
				break
			}
		}
		if unix.SchedSetaffinity(0, &old) == nil {
			runtime.UnlockOSThread() // else the thread is discarded
		}
		errc <- err
	}()
	return <-errc
}

// collect reads incoming frames until one containing stop arrives and
// returns the IPv6 packets containing want (bounded by a deadline).
func (w *wire) collect(want, stop string) ([][]byte, error) {
	var got [][]byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(w.recvFD, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if n < 14 {
			continue
		}
		pkt := buf[14:n]
		switch {
		case bytes.Contains(pkt, []byte(stop)):
			return got, nil
		case bytes.Contains(pkt, []byte(want)):
			got = append(got, bytes.Clone(pkt))
		}
	}
	return got, fmt.Errorf("sentinel %q never arrived", stop)
}

// runProbes sends every probe through the edge (each followed by a sentinel
// that every backend forwards) and returns what came out, by probe index:
// nil if nothing did.
func runProbes(t *testing.T, topo *lab.Translator, ps []probe, extLAN netip.Addr, round string) [][]byte {
	t.Helper()
	outRecv, _ := openPacketSocket(t, topo.Out, topo.OutIf)
	lanRecv, _ := openPacketSocket(t, topo.LAN, topo.LANIf)
	lanSend, lanIdx := openPacketSocket(t, topo.LAN, topo.LANIf)
	outSend, outIdx := openPacketSocket(t, topo.Out, topo.OutIf)
	outbound := &wire{sendFD: lanSend, recvFD: outRecv, sendIf: lanIdx, dstMAC: topo.EdgeLANMAC, srcMAC: topo.LANMAC}
	inbound := &wire{sendFD: outSend, recvFD: lanRecv, sendIf: outIdx, dstMAC: topo.EdgeUpMAC, srcMAC: topo.OutMAC}
	res := make([][]byte, len(ps))
	for i, p := range ps {
		w, sentinel := outbound, udpPacket(lab.NPTLANHost, lab.NPTOutHost, "")
		if p.dir == Inbound {
			w, sentinel = inbound, udpPacket(lab.NPTOutHost, extLAN, "")
		}
		stop := fmt.Sprintf("SENTINEL-%s-%d", round, i)
		sentinel = udpPacket(addrAt(sentinel, offSrc), addrAt(sentinel, offDst), stop)
		if err := sendInOrder(w, p.pkt, sentinel); err != nil {
			t.Fatalf("%s: send: %v", p.name, err)
		}
		got, err := w.collect(marked(p.name, i), stop)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if len(got) > 1 {
			t.Fatalf("%s: %d copies came out", p.name, len(got))
		}
		if len(got) == 1 {
			res[i] = got[0]
		}
	}
	return res
}

// TestDifferential sends the same crafted packets through ip6t_NPT (driven
// by ip6tables-nft and by ip6tables-legacy) and
// through the eBPF backend (TCX and tc attachment) and compares the bytes
// that come out with each other and with the core's prediction. The only
// differences allowed are the documented ones (probe.kernelDiffers), and
// those must really occur: ip6t_NPT forwards what RFC 6296 drops.
func TestDifferential(t *testing.T) {
	requirePrivileged(t, "ip6tables", "ip6tables-legacy")
	topo := newTopology(t)
	ctx := context.Background()
	if _, err := topo.Edge.Run(ctx, "ip", "-6", "route", "add", "fd7a:5e1d:9d00::/48", "via", lab.NPTLANHost.String()); err != nil {
		t.Fatal(err)
	}
	ms := diffMappings(topo)
	tb := mustTable(t, ms)
	ps := diffProbes(t, tb)
	extLAN, _ := tb.Translators()[0].Outbound(lab.NPTLANHost)

	results := map[string][][]byte{}
	for _, b := range []backend{kernelBackend(), kernelBackendCmd("kernel-legacy", "ip6tables-legacy"), ebpfBackend(), ebpfBackendMode("ebpf-tc", true)} {
		dp := b.new(t, topo)
		setOrFatal(t, dp, ms)
		results[b.name] = runProbes(t, topo, ps, extLAN, b.name)
		if b.name == "ebpf" {
			cs, err := dp.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var drops uint64
			for _, c := range cs {
				drops += c.OutDrops + c.InDrops
			}
			// Drops: out-56-iid-all-ones, out-subnet-ffff, out-zero-iid,
			// in-subnet-ffff, in-zero-iid.
			if drops != 5 {
				t.Errorf("eBPF drop counters sum to %d, want 5: %+v", drops, cs)
			}
		}
		if err := dp.Purge(ctx); err != nil {
			t.Fatalf("%s purge: %v", b.name, err)
		}
	}

	for i, p := range ps {
		want := expected(tb, topo.EdgeUpIf, p)
		k, e, etc := results["kernel"][i], results["ebpf"][i], results["ebpf-tc"][i]
		if kl := results["kernel-legacy"][i]; !bytes.Equal(kl, k) {
			t.Errorf("%s: ip6tables-legacy and ip6tables-nft differ:\n legacy % x\n nft    % x", p.name, kl, k)
		}
		if !bytes.Equal(e, want) {
			t.Errorf("%s: eBPF (TCX) output differs from the core:\n got  % x\n want % x", p.name, e, want)
		}
		if !bytes.Equal(etc, e) {
			t.Errorf("%s: eBPF via tc differs from eBPF via TCX:\n tc  % x\n tcx % x", p.name, etc, e)
		}
		if p.kernelDiffers == "" {
			if !bytes.Equal(k, e) {
				t.Errorf("%s: ip6t_NPT and eBPF differ:\n kernel % x\n ebpf   % x", p.name, k, e)
			}
			continue
		}
		if bytes.Equal(k, e) {
			t.Errorf("%s: documented difference (%s) did not happen: both gave % x", p.name, p.kernelDiffers, k)
		} else {
			t.Logf("%s: expected difference: %s", p.name, p.kernelDiffers)
		}
	}
}

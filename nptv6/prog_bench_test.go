package nptv6

import (
	"encoding/binary"
	"net/netip"
	"os"

	"github.com/cilium/ebpf"
	"path/filepath"
	"testing"
)

// BenchmarkEgressProgram runs npt_egress in the kernel (BPF_PROG_TEST_RUN)
// on a frame that a mapping translates and on one no mapping covers, and
// reports the program's own cost per packet and the ratio of the two,
// measured in the same run. It does not include the cost of the tc/TCX hook
// itself (see nptv6ctl bench for the whole path). Needs root; without it
// the benchmark is skipped.
func BenchmarkEgressProgram(b *testing.B) {
	if testing.Short() {
		b.Skip("short mode")
	}
	if os.Geteuid() != 0 {
		b.Skip("needs root to load eBPF programs")
	}
	dir := bpffs(b)
	e, err := NewEBPF(EBPFOptions{PinPath: filepath.Join(dir, "nptv6")})
	if err != nil {
		b.Skipf("eBPF not available: %v", err)
	}
	defer e.Purge(b.Context())
	defer e.Close()
	// BPF_PROG_TEST_RUN runs with the loopback device: ifindex 1.
	tr, _ := NewTranslator(Mapping{Interface: "lo", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00::/48"), External: netip.MustParsePrefix("2001:db8:1001::/48")})
	o, in := entries(tr, 1, 0, false)
	if err := e.objs.NptOut.Put(o.key, o.val); err != nil {
		b.Fatal(err)
	}
	if err := e.objs.NptIn.Put(in.key, in.val); err != nil {
		b.Fatal(err)
	}
	frame := func(src netip.Addr) []byte {
		p := udpPacket(src, netip.MustParseAddr("2001:db8:9000::1"), "benchmark payload!")
		f := make([]byte, 14+len(p))
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		copy(f[14:], p)
		return f
	}
	hit := frame(netip.MustParseAddr("fd7a:5e1d:9c00:1::2"))
	miss := frame(netip.MustParseAddr("fd7a:5e1e:1::2"))
	// The translated frame must really be translated, or the figures
	// compare two misses.
	out := make([]byte, len(hit))
	if _, err := e.objs.NptEgress.Run(&ebpf.RunOptions{Data: hit, DataOut: out}); err != nil {
		b.Fatal(err)
	}
	if got, want := addrAt(out[14:], offSrc), mustOutbound(b, tr, netip.MustParseAddr("fd7a:5e1d:9c00:1::2")); got != want {
		b.Fatalf("test run left source %s, want %s", got, want)
	}
	// BPF_PROG_TEST_RUN repeats the program on the same buffer, so after the
	// first run the source would be external and miss. For the timed runs
	// the entry maps the internal prefix onto itself (adjustment 0): every
	// repetition then takes the full translation path (lookup, counters,
	// rewrite) and leaves the frame as it was.
	o.val.To, o.val.Adj = o.val.From, 0
	if err := e.objs.NptOut.Put(o.key, o.val); err != nil {
		b.Fatal(err)
	}
	run := func(f []byte) float64 {
		const repeat = 200_000
		ret, d, err := e.objs.NptEgress.Benchmark(f, repeat, nil)
		if err != nil {
			b.Fatalf("test run: %v", err)
		}
		if int32(ret) != -1 { // TC_ACT_UNSPEC: continue
			b.Fatalf("program returned %d", int32(ret))
		}
		return float64(d.Nanoseconds())
	}
	var hitNs, missNs float64
	for b.Loop() {
		hitNs += run(hit)
		missNs += run(miss)
	}
	b.ReportMetric(hitNs/float64(b.N), "ns/translated-pkt")
	b.ReportMetric(missNs/float64(b.N), "ns/passed-pkt")
	b.ReportMetric(hitNs/missNs, "translated/passed")
	b.ReportMetric(0, "ns/op")
}

func mustOutbound(tb testing.TB, tr *Translator, a netip.Addr) netip.Addr {
	tb.Helper()
	out, err := tr.Outbound(a)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

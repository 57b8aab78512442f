package nptv6

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/multihomed/multihomed/nptv6/rfc6296"
	"github.com/multihomed/multihomed/nptv6/rfc6296/rfc6296test"
)

var fuzzTable = []Mapping{
	{Interface: "isp-a", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00::/48"), External: netip.MustParsePrefix("2001:db8:1001::/48"), Hairpin: true},
	{Interface: "isp-b", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00:100::/56"), External: netip.MustParsePrefix("2001:db8:2001:4200::/56")},
	{Interface: "isp-b", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00:1::/64"), External: netip.MustParsePrefix("2001:db8:2001:1::/64")},
}

// FuzzProcess feeds arbitrary bytes to the packet path. Whatever the input
// it must not panic, must not change the length, must change nothing but
// the four address fields, must keep the one's-complement sum of the packet
// (checksum neutrality, RFC 6296 section 3.1), must leave dropped packets
// alone, and a translated address must map back.
func FuzzProcess(f *testing.F) {
	ext, _ := mustTable(f, fuzzTable).Translators()[0].Outbound(lanHost)
	f.Add(udpPacket(lanHost, outHost, "hello"), uint8(0))
	f.Add(udpPacket(outHost, ext, "hello"), uint8(1))
	f.Add(icmpError(router, ext, 1, udpPacket(ext, outHost, "probe")), uint8(1))
	f.Add(icmpError(lanHost, outHost, 3, udpPacket(outHost, lanHost, "probe")), uint8(0))
	f.Add(udpPacket(lanHost, ext, "hairpin"), uint8(0))
	f.Add(udpPacket(netip.MustParseAddr("fd7a:5e1d:9c00:142::1"), outHost, "b"), uint8(2))
	f.Add(udpPacket(netip.MustParseAddr("fd7a:5e1d:9c00:ffff::1"), outHost, "ffff"), uint8(0))
	f.Add(icmpError(netip.MustParseAddr("2001:db8:1000:1::2"), outHost, 2, udpPacket(outHost, lanHost, "ptb")), uint8(0))
	f.Add([]byte{0x60}, uint8(0))
	tb := mustTable(f, fuzzTable)
	f.Fuzz(func(t *testing.T, pkt []byte, sel uint8) {
		iface := "isp-a"
		if sel&2 != 0 {
			iface = "isp-b"
		}
		dir := Outbound
		if sel&1 != 0 {
			dir = Inbound
		}
		orig := bytes.Clone(pkt)
		r := tb.Process(pkt, iface, dir)
		if len(pkt) != len(orig) {
			t.Fatalf("length changed %d -> %d", len(orig), len(pkt))
		}
		if r.Verdict == Pass || r.Verdict == Drop {
			if !bytes.Equal(pkt, orig) {
				t.Fatalf("%v changed the packet", r.Verdict)
			}
			if r.Verdict == Drop && r.Err == nil {
				t.Fatal("drop without a reason")
			}
			return
		}
		for i := range pkt {
			inAddr := (i >= offSrc && i < offDst+16) || (i >= offEmbeddedSrc && i < offEmbeddedDst+16)
			if !inAddr && pkt[i] != orig[i] {
				t.Fatalf("byte %d changed (%#x -> %#x) outside the address fields", i, orig[i], pkt[i])
			}
		}
		if !rfc6296test.SameSum(rfc6296.Sum16(pkt), rfc6296.Sum16(orig)) {
			t.Fatalf("packet sum changed %#x -> %#x", rfc6296.Sum16(orig), rfc6296.Sum16(pkt))
		}
		tr := tb.Translators()[r.Index]
		if dir == Outbound && addrAt(pkt, offSrc) == addrAt(orig, offSrc) {
			// An error from a non-internal source: only the quoted
			// destination changed.
			back, err := tr.Inbound(addrAt(pkt, offEmbeddedDst))
			if err != nil || back != addrAt(orig, offEmbeddedDst) {
				t.Fatalf("quoted destination %s -> %s maps back to %s, %v", addrAt(orig, offEmbeddedDst), addrAt(pkt, offEmbeddedDst), back, err)
			}
		} else if dir == Outbound {
			back, err := tr.Inbound(addrAt(pkt, offSrc))
			if err != nil || back != addrAt(orig, offSrc) {
				t.Fatalf("source %s -> %s maps back to %s, %v", addrAt(orig, offSrc), addrAt(pkt, offSrc), back, err)
			}
		} else {
			back, err := tr.Outbound(addrAt(pkt, offDst))
			if err != nil || back != addrAt(orig, offDst) {
				t.Fatalf("destination %s -> %s maps back to %s, %v", addrAt(orig, offDst), addrAt(pkt, offDst), back, err)
			}
		}
	})
}

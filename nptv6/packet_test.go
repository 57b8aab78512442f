package nptv6

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/nptv6/rfc6296"
	"github.com/multihomed/multihomed/nptv6/rfc6296/rfc6296test"
)

const (
	protoUDP = 17
	protoTCP = 6
)

// ipv6Packet builds an IPv6 packet with a correct upper-layer checksum at
// csumOff inside payload (RFC 8200 section 8.1).
func ipv6Packet(src, dst netip.Addr, proto byte, payload []byte, csumOff int) []byte {
	p := make([]byte, ipv6HeaderLen+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(payload)))
	p[6] = proto
	p[7] = 64
	s, d := src.As16(), dst.As16()
	copy(p[offSrc:], s[:])
	copy(p[offDst:], d[:])
	copy(p[ipv6HeaderLen:], payload)
	if csumOff >= 0 {
		binary.BigEndian.PutUint16(p[ipv6HeaderLen+csumOff:], 0)
		binary.BigEndian.PutUint16(p[ipv6HeaderLen+csumOff:], ^upperSum(p))
	}
	return p
}

// upperSum is the one's-complement sum of the pseudo-header and the upper
// layer of an IPv6 packet without extension headers.
func upperSum(p []byte) uint16 {
	var ph [40]byte
	copy(ph[:32], p[offSrc:offDst+16])
	binary.BigEndian.PutUint32(ph[32:], uint32(len(p)-ipv6HeaderLen))
	ph[39] = p[offNextHeader]
	return rfc6296.OnesAdd(rfc6296.Sum16(ph[:]), rfc6296.Sum16(p[ipv6HeaderLen:]))
}

// checksumOK: a correct checksum makes the whole sum negative zero.
func checksumOK(p []byte) bool { return upperSum(p) == 0xFFFF }

func udpPacket(src, dst netip.Addr, payload string) []byte {
	u := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], 40000)
	binary.BigEndian.PutUint16(u[2:], 7)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	return ipv6Packet(src, dst, protoUDP, u, 6)
}

// icmpError wraps invoking (a whole packet) in an ICMPv6 error of type typ.
func icmpError(src, dst netip.Addr, typ byte, invoking []byte) []byte {
	m := make([]byte, icmpHeaderLen+len(invoking))
	m[0] = typ
	copy(m[icmpHeaderLen:], invoking)
	return ipv6Packet(src, dst, protoICMPv6, m, 2)
}

var (
	lanHost   = netip.MustParseAddr("fd7a:5e1d:9c00:1::2")
	lanHost2  = netip.MustParseAddr("fd7a:5e1d:9c00:2::3")
	outHost   = netip.MustParseAddr("2001:db8:9000::1")
	router    = netip.MustParseAddr("2001:db8:1000:1::1")
	testTable = []Mapping{
		{Interface: "isp-a", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00::/48"), External: netip.MustParsePrefix("2001:db8:1001::/48"), Hairpin: true},
		{Interface: "isp-b", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00::/48"), External: netip.MustParsePrefix("2001:db8:2001::/48")},
	}
)

func mustTable(t testing.TB, ms []Mapping) *Table {
	t.Helper()
	tb, err := NewTable(ms)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestProcessUDP(t *testing.T) {
	tb := mustTable(t, testTable)
	tra := tb.Translators()[0]
	ext, _ := tra.Outbound(lanHost)

	p := udpPacket(lanHost, outHost, "hello")
	r := tb.Process(p, "isp-a", Outbound)
	if r.Verdict != Translated || r.Index != 0 {
		t.Fatalf("outbound: %+v, want translated by mapping 0", r)
	}
	if got := addrAt(p, offSrc); got != ext {
		t.Errorf("source = %s, want %s", got, ext)
	}
	if !checksumOK(p) {
		t.Error("UDP checksum broken by outbound translation")
	}
	// The same packet on isp-b uses isp-b's prefix.
	pb := udpPacket(lanHost, outHost, "hello")
	if r := tb.Process(pb, "isp-b", Outbound); r.Verdict != Translated || r.Index != 1 ||
		!netip.MustParsePrefix("2001:db8:2001::/48").Contains(addrAt(pb, offSrc)) {
		t.Errorf("isp-b outbound: %+v, source %s", r, addrAt(pb, offSrc))
	}

	reply := udpPacket(outHost, ext, "hello")
	if r := tb.Process(reply, "isp-a", Inbound); r.Verdict != Translated {
		t.Fatalf("inbound: %+v", r)
	}
	if got := addrAt(reply, offDst); got != lanHost {
		t.Errorf("destination = %s, want %s", got, lanHost)
	}
	if !checksumOK(reply) {
		t.Error("UDP checksum broken by inbound translation")
	}

	// Not ours: passes untouched, in both directions.
	other := udpPacket(netip.MustParseAddr("2001:db8:1000:1::2"), outHost, "x")
	orig := bytes.Clone(other)
	if r := tb.Process(other, "isp-a", Outbound); r.Verdict != Pass || !bytes.Equal(other, orig) {
		t.Errorf("foreign source: %+v, changed %v", r, !bytes.Equal(other, orig))
	}
	if r := tb.Process(other, "isp-a", Inbound); r.Verdict != Pass || !bytes.Equal(other, orig) {
		t.Errorf("foreign destination: %+v", r)
	}
}

func TestProcessDrops(t *testing.T) {
	tb := mustTable(t, testTable)
	for _, tc := range []struct {
		name     string
		src, dst string
		dir      Direction
		want     error
	}{
		{"outbound subnet 0xFFFF", "fd7a:5e1d:9c00:ffff::2", "2001:db8:9000::1", Outbound, ErrSubnetFFFF},
		{"outbound zero IID", "fd7a:5e1d:9c00:1::", "2001:db8:9000::1", Outbound, ErrZeroIID},
		{"inbound subnet 0xFFFF", "2001:db8:9000::1", "2001:db8:1001:ffff::2", Inbound, ErrSubnetFFFF},
		{"inbound zero IID", "2001:db8:9000::1", "2001:db8:1001:5::", Inbound, ErrZeroIID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := udpPacket(netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.dst), "x")
			orig := bytes.Clone(p)
			r := tb.Process(p, "isp-a", tc.dir)
			if r.Verdict != Drop || !errors.Is(r.Err, tc.want) {
				t.Fatalf("%+v, want drop with %v", r, tc.want)
			}
			if !bytes.Equal(p, orig) {
				t.Error("a dropped packet was modified")
			}
		})
	}
}

// TestProcessICMPError: errors crossing the translator carry the embedded
// packet's address translated, and both the ICMPv6 checksum and the
// embedded UDP checksum stay valid.
func TestProcessICMPError(t *testing.T) {
	tb := mustTable(t, testTable)
	ext, _ := tb.Translators()[0].Outbound(lanHost)

	// Inbound: a router beyond the edge reports that our outbound packet
	// (already translated: source ext) could not be delivered.
	for _, typ := range []byte{1, 2, 3, 4} {
		inv := udpPacket(ext, outHost, "probe")
		e := icmpError(router, ext, typ, inv)
		if r := tb.Process(e, "isp-a", Inbound); r.Verdict != Translated {
			t.Fatalf("type %d inbound: %+v", typ, r)
		}
		if got := addrAt(e, offDst); got != lanHost {
			t.Errorf("type %d: outer destination %s, want %s", typ, got, lanHost)
		}
		if got := addrAt(e, offEmbeddedSrc); got != lanHost {
			t.Errorf("type %d: embedded source %s, want %s", typ, got, lanHost)
		}
		if !checksumOK(e) {
			t.Errorf("type %d: ICMPv6 checksum broken", typ)
		}
		if !checksumOK(e[offEmbedded:]) {
			t.Errorf("type %d: embedded UDP checksum broken", typ)
		}
	}

	// Outbound: the LAN host reports an error about a packet that came in
	// (its destination already translated to the internal address).
	inv := udpPacket(outHost, lanHost, "probe")
	e := icmpError(lanHost, outHost, 1, inv)
	if r := tb.Process(e, "isp-a", Outbound); r.Verdict != Translated {
		t.Fatalf("outbound error: %+v", r)
	}
	if got := addrAt(e, offEmbeddedDst); got != ext {
		t.Errorf("embedded destination %s, want %s", got, ext)
	}
	if !checksumOK(e) || !checksumOK(e[offEmbedded:]) {
		t.Error("checksums broken by outbound error translation")
	}

	// An informational message (echo request, type 128) carries no
	// embedded packet: its body is left alone even if it looks like one.
	inv = udpPacket(ext, outHost, "probe")
	echo := icmpError(router, ext, 128, inv)
	tb.Process(echo, "isp-a", Inbound)
	if got := addrAt(echo, offEmbeddedSrc); got != ext {
		t.Errorf("echo body rewritten: %s", got)
	}
}

func TestProcessHairpin(t *testing.T) {
	tb := mustTable(t, testTable)
	ta := tb.Translators()[0]
	ext1, _ := ta.Outbound(lanHost)
	ext2, _ := ta.Outbound(lanHost2)
	p := udpPacket(lanHost, ext2, "hairpin")
	r := tb.Process(p, "isp-a", Outbound)
	if r.Verdict != Hairpinned {
		t.Fatalf("%+v, want hairpinned", r)
	}
	if s, d := addrAt(p, offSrc), addrAt(p, offDst); s != ext1 || d != lanHost2 {
		t.Errorf("hairpinned %s -> %s, want %s -> %s", s, d, ext1, lanHost2)
	}
	if !checksumOK(p) {
		t.Error("checksum broken by hairpin")
	}
	// isp-b's mapping has no hairpin: only the source is translated.
	ta2 := tb.Translators()[1]
	extB, _ := ta2.Outbound(lanHost2)
	p = udpPacket(lanHost, extB, "x")
	if r := tb.Process(p, "isp-b", Outbound); r.Verdict != Translated || addrAt(p, offDst) != extB {
		t.Errorf("no-hairpin mapping: %+v dst %s", r, addrAt(p, offDst))
	}
}

// TestProcessNeutralRandom: random UDP packets with valid checksums keep
// them after either direction.
func TestProcessNeutralRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	tb := mustTable(t, testTable)
	in, ex := testTable[0].Internal, testTable[0].External
	translated := 0
	for range 5000 {
		payload := make([]byte, r.IntN(64))
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		var p []byte
		dir := Outbound
		if r.IntN(2) == 0 {
			p = udpPacket(rfc6296test.RandAddrIn(r, in), outHost, string(payload))
		} else {
			p = udpPacket(outHost, rfc6296test.RandAddrIn(r, ex), string(payload))
			dir = Inbound
		}
		res := tb.Process(p, "isp-a", dir)
		if res.Verdict == Translated {
			translated++
		}
		if !checksumOK(p) {
			t.Fatalf("%s %v: checksum broken: % x", dir, res, p)
		}
	}
	if translated == 0 {
		t.Fatal("no packet was translated")
	}
}

// TestTableValidation: a table refuses overlapping internal prefixes on
// one interface, naming the mapping, and allows one on two interfaces.
func TestTableValidation(t *testing.T) {
	p := netip.MustParsePrefix
	_, err := NewTable([]Mapping{
		{Interface: "a", Internal: p("fd7a:5e1d:9c00::/48"), External: p("2001:db8:1001::/48")},
		{Interface: "a", Internal: p("fd7a:5e1d:9c00:100::/56"), External: p("2001:db8:2001::/48")},
	})
	if err == nil || !strings.Contains(err.Error(), "mappings[1]") {
		t.Errorf("overlapping internal prefixes on one interface: err = %v, want mappings[1] named", err)
	}
	// The same internal prefix on two uplinks is the normal PA-mode case.
	if _, err := NewTable([]Mapping{
		{Interface: "a", Internal: p("fd7a:5e1d:9c00::/48"), External: p("2001:db8:1001::/48")},
		{Interface: "b", Internal: p("fd7a:5e1d:9c00::/48"), External: p("2001:db8:2001::/48")},
	}); err != nil {
		t.Errorf("one internal prefix on two uplinks: %v", err)
	}
}

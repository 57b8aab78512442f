package rfc6296

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/nptv6/rfc6296/rfc6296test"
	"github.com/multihomed/multihomed/routing"
)

func mustTranslator(t testing.TB, in, ex string) *Translator {
	t.Helper()
	tr, err := NewTranslator(routing.NPTMapping{Interface: "up0", Internal: netip.MustParsePrefix(in), External: netip.MustParsePrefix(ex)})
	if err != nil {
		t.Fatalf("NewTranslator(%s, %s): %v", in, ex, err)
	}
	return tr
}

// TestRFC6296Example is the worked example of RFC 6296 section 3.6.
func TestRFC6296Example(t *testing.T) {
	tr := mustTranslator(t, "fd01:203:405::/48", "2001:db8:1::/48")
	// Section 3.6: the checksums of the prefixes are 0xFCF5 (internal) and
	// 0xD245 (external); 0xD245 - 0xFCF5 = 0xD54F in one's complement.
	if got := tr.Adjustment(); got != 0xD54F {
		t.Errorf("adjustment = %#04x, want 0xd54f", got)
	}
	in := netip.MustParseAddr("fd01:203:405:1::1234")
	want := netip.MustParseAddr("2001:db8:1:d550::1234")
	got, err := tr.Outbound(in)
	if err != nil || got != want {
		t.Fatalf("Outbound(%s) = %s, %v; want %s", in, got, err, want)
	}
	back, err := tr.Inbound(got)
	if err != nil || back != in {
		t.Fatalf("Inbound(%s) = %s, %v; want %s", got, back, err, in)
	}
}

func TestLongerPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name, in, ex, addr string
		wantWord           int // the word that must differ besides the prefix
	}{
		{"/56 adjusts word 64..79", "fd7a:5e1d:9c00:100::/56", "2001:db8:1001:200::/56", "fd7a:5e1d:9c00:142:1:2:3:4", 4},
		{"/64 skips a leading 0xFFFF", "fd7a:5e1d:9c00:1::/64", "2001:db8:1001:1::/64", "fd7a:5e1d:9c00:1:ffff:2:3:4", 5},
		{"/60 skips three 0xFFFF", "fd7a:5e1d:9c00:10::/60", "2001:db8:1001:20::/60", "fd7a:5e1d:9c00:13:ffff:ffff:ffff:4", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTranslator(t, tc.in, tc.ex)
			a := netip.MustParseAddr(tc.addr)
			out, err := tr.Outbound(a)
			if err != nil {
				t.Fatalf("Outbound(%s): %v", a, err)
			}
			if !tr.External().Contains(out) {
				t.Errorf("Outbound(%s) = %s, outside %s", a, out, tr.External())
			}
			ab, ob := a.As16(), out.As16()
			bits := tr.Bits()
			for w := 0; w < 8; w++ {
				if w*16 < bits {
					continue // prefix words
				}
				same := binary.BigEndian.Uint16(ab[2*w:]) == binary.BigEndian.Uint16(ob[2*w:])
				if w == tc.wantWord && same && tr.Adjustment() != 0 {
					t.Errorf("word %d unchanged in %s -> %s", w, a, out)
				}
				if w != tc.wantWord && !same {
					t.Errorf("word %d changed in %s -> %s; only word %d may", w, a, out, tc.wantWord)
				}
			}
			if !rfc6296test.SameSum(SumAddr(a), SumAddr(out)) {
				t.Errorf("sum changed: %s %#x -> %s %#x", a, SumAddr(a), out, SumAddr(out))
			}
			back, err := tr.Inbound(out)
			if err != nil || back != a {
				t.Errorf("Inbound(%s) = %s, %v; want %s", out, back, err, a)
			}
		})
	}
}

func TestDrops(t *testing.T) {
	t48 := mustTranslator(t, "fd7a:5e1d:9c00::/48", "2001:db8:1001::/48")
	t64 := mustTranslator(t, "fd7a:5e1d:9c00:1::/64", "2001:db8:1001:1::/64")
	// For /64, the IID (x,0,0,0) with x + adj = 0xFFFF would come out
	// written as 0x0000: an all-zero IID after translation.
	x := ^t64.Adjustment()
	zeroAfter := netip.AddrFrom16([16]byte{0xfd, 0x7a, 0x5e, 0x1d, 0x9c, 0x00, 0, 1, byte(x >> 8), byte(x)})
	for _, tc := range []struct {
		name string
		tr   *Translator
		dir  string // outbound or inbound
		addr string
		want error
	}{
		{"internal subnet 0xFFFF", t48, "outbound", "fd7a:5e1d:9c00:ffff::1", ErrSubnetFFFF},
		{"external subnet 0xFFFF", t48, "inbound", "2001:db8:1001:ffff::1", ErrSubnetFFFF},
		{"internal zero IID", t48, "outbound", "fd7a:5e1d:9c00:1::", ErrZeroIID},
		{"external zero IID", t48, "inbound", "2001:db8:1001:1::", ErrZeroIID},
		{"/64 zero IID", t64, "outbound", "fd7a:5e1d:9c00:1::", ErrZeroIID},
		{"/64 IID zero after translation", t64, "outbound", zeroAfter.String(), ErrZeroIID},
		{"/64 all-ones IID", t64, "outbound", "fd7a:5e1d:9c00:1:ffff:ffff:ffff:ffff", ErrIIDAllOnes},
		{"/64 all-ones IID inbound", t64, "inbound", "2001:db8:1001:1:ffff:ffff:ffff:ffff", ErrIIDAllOnes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			var err error
			if tc.dir == "outbound" {
				_, err = tc.tr.Outbound(a)
			} else {
				_, err = tc.tr.Inbound(a)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("%s %s: err = %v, want %v", tc.dir, a, err, tc.want)
			}
		})
	}
}

// TestFFFFWrittenAsZero picks the subnet whose adjusted word is exactly
// 0xFFFF and checks it comes out as 0x0000 (RFC 6296 section 3.2) and maps
// back.
func TestFFFFWrittenAsZero(t *testing.T) {
	tr := mustTranslator(t, "fd01:203:405::/48", "2001:db8:1::/48")
	w := ^tr.Adjustment() // w + adj = 0xFFFF
	if w == 0xFFFF {
		t.Fatal("test needs an adjustment other than zero")
	}
	a := netip.AddrFrom16([16]byte{0xfd, 0x01, 0x02, 0x03, 0x04, 0x05, byte(w >> 8), byte(w), 15: 1})
	out, err := tr.Outbound(a)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddr("2001:db8:1::1")
	if out != want {
		t.Fatalf("Outbound(%s) = %s, want %s", a, out, want)
	}
	back, err := tr.Inbound(out)
	if err != nil || back != a {
		t.Fatalf("Inbound(%s) = %s, %v; want %s", out, back, err, a)
	}
}

func TestMismatchedLengths(t *testing.T) {
	// RFC 6296 section 3.1: the shorter prefix is extended with zeros.
	tr := mustTranslator(t, "fd7a:5e1d:9c00::/48", "2001:db8:1001:100::/56")
	if tr.Bits() != 56 || tr.Internal() != netip.MustParsePrefix("fd7a:5e1d:9c00::/56") {
		t.Fatalf("bits %d internal %s; want 56, fd7a:5e1d:9c00::/56", tr.Bits(), tr.Internal())
	}
	if _, err := tr.Outbound(netip.MustParseAddr("fd7a:5e1d:9c00:100::1")); err == nil {
		t.Error("subnet 0x0100 is outside the zero-extended internal prefix; want an error")
	}
	a := netip.MustParseAddr("fd7a:5e1d:9c00:7:1:2:3:4")
	out, err := tr.Outbound(a)
	if err != nil || !netip.MustParsePrefix("2001:db8:1001:100::/56").Contains(out) {
		t.Fatalf("Outbound(%s) = %s, %v", a, out, err)
	}
	if back, err := tr.Inbound(out); err != nil || back != a {
		t.Fatalf("Inbound(%s) = %s, %v; want %s", out, back, err, a)
	}
}

func TestValidation(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		m    routing.NPTMapping
		want string
	}{
		{routing.NPTMapping{External: p("2001:db8:1001::/48")}, "internal prefix is not set"},
		{routing.NPTMapping{Internal: p("10.0.0.0/8"), External: p("2001:db8:1001::/48")}, "not IPv6"},
		{routing.NPTMapping{Internal: p("fd7a:5e1d:9c00::1/48"), External: p("2001:db8:1001::/48")}, "use fd7a:5e1d:9c00::/48"},
		{routing.NPTMapping{Internal: p("fd7a:5e1d:9c00::/80"), External: p("2001:db8:1001::/48")}, "length must be 1..64"},
		{routing.NPTMapping{Internal: p("2001:db8:1001::/48"), External: p("2001:db8:1001::/56")}, "overlap"},
	} {
		_, err := NewTranslator(tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewTranslator(%+v) = %v, want error containing %q", tc.m, err, tc.want)
		}
	}
}

// TestPropertyRoundTrip: for random prefix pairs of random (possibly
// different) lengths and random addresses, a translated address maps back
// to the original, its one's-complement sum (and so the pseudo-header
// checksum) is unchanged, and an address is refused only for a reason the
// RFC gives.
func TestPropertyRoundTrip(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0x6296))
	var ok, dropped int
	for range 2000 {
		ib, eb := 1+r.IntN(64), 1+r.IntN(64)
		if r.IntN(2) == 0 {
			eb = ib
		}
		if ib < 8 || eb < 8 {
			ib, eb = max(ib, 8), max(eb, 8) // keep fd.. and 20.. disjoint
		}
		m := routing.NPTMapping{Interface: "up0", Internal: rfc6296test.RandPrefix(r, 0xfd, ib), External: rfc6296test.RandPrefix(r, 0x20, eb)}
		tr, err := NewTranslator(m)
		if err != nil {
			t.Fatalf("NewTranslator(%v): %v", m, err)
		}
		for range 20 {
			a := rfc6296test.RandAddrIn(r, tr.Internal())
			out, err := tr.Outbound(a)
			if err != nil {
				if !errors.Is(err, ErrSubnetFFFF) && !errors.Is(err, ErrZeroIID) && !errors.Is(err, ErrIIDAllOnes) {
					t.Fatalf("%v: Outbound(%s): unexpected error %v", m, a, err)
				}
				dropped++
				continue
			}
			ok++
			if !tr.External().Contains(out) {
				t.Fatalf("%v: Outbound(%s) = %s outside %s", m, a, out, tr.External())
			}
			if !rfc6296test.SameSum(SumAddr(a), SumAddr(out)) {
				t.Fatalf("%v: %s -> %s changes the sum %#x -> %#x", m, a, out, SumAddr(a), SumAddr(out))
			}
			back, err := tr.Inbound(out)
			if err != nil || back != a {
				t.Fatalf("%v: Inbound(Outbound(%s)=%s) = %s, %v", m, a, out, back, err)
			}
		}
	}
	if ok < 1000 || dropped == 0 {
		t.Fatalf("translated %d, dropped %d: the generator does not cover both outcomes", ok, dropped)
	}
}

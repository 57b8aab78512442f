package rfc6296

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/multihomed/multihomed/nptv6/rfc6296/rfc6296test"
	"github.com/multihomed/multihomed/routing"
)

// FuzzTranslator checks the address arithmetic for arbitrary prefix pairs
// and addresses: round trip and unchanged one's-complement sum, or a refusal
// for a reason RFC 6296 gives.
func FuzzTranslator(f *testing.F) {
	a16 := func(s string) []byte { b := netip.MustParseAddr(s).As16(); return b[:] }
	f.Add(a16("fd01:203:405::"), uint8(48), a16("2001:db8:1::"), uint8(48), a16("fd01:203:405:1::1234"))
	f.Add(a16("fd7a:5e1d:9c00::"), uint8(48), a16("2001:db8:1001:100::"), uint8(56), a16("fd7a:5e1d:9c00:7:ffff:ffff:0:1"))
	f.Fuzz(func(t *testing.T, in []byte, ib uint8, ex []byte, eb uint8, addr []byte) {
		if len(in) != 16 || len(ex) != 16 || len(addr) != 16 {
			return
		}
		ip := netip.PrefixFrom(netip.AddrFrom16([16]byte(in)), int(ib%65)).Masked()
		ep := netip.PrefixFrom(netip.AddrFrom16([16]byte(ex)), int(eb%65)).Masked()
		tr, err := NewTranslator(routing.NPTMapping{Internal: ip, External: ep})
		if err != nil {
			return
		}
		src := rfc6296test.Within(tr.Internal(), [16]byte(addr))
		out, err := tr.Outbound(src)
		if err != nil {
			if !errors.Is(err, ErrSubnetFFFF) && !errors.Is(err, ErrZeroIID) && !errors.Is(err, ErrIIDAllOnes) {
				t.Fatalf("Outbound(%s): %v", src, err)
			}
			return
		}
		if !rfc6296test.SameSum(SumAddr(src), SumAddr(out)) {
			t.Fatalf("%s -> %s changes the sum", src, out)
		}
		back, err := tr.Inbound(out)
		if err != nil || back != src {
			t.Fatalf("Inbound(%s) = %s, %v; want %s", out, back, err, src)
		}
	})
}

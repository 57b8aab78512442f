package rfc6296test

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// RandPrefix returns a random IPv6 prefix of the given length with the
// first byte fixed (0xfd for ULA, 0x20 for documentation-like space), so
// that prefixes of different first bytes and at least 8 bits never overlap.
func RandPrefix(r *rand.Rand, first byte, bits int) netip.Prefix {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = first
	return netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
}

// RandAddrIn returns a random address inside p. Each word from the fourth
// on is 0xFFFF or 0 one time in six each, so that the cases RFC 6296 refuses
// or rewrites (a subnet of 0xFFFF, an all-zero or all-ones interface
// identifier, an adjusted word of 0xFFFF) come up often.
func RandAddrIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for w := 3; w < 8; w++ {
		switch r.IntN(6) {
		case 0:
			binary.BigEndian.PutUint16(b[2*w:], 0xFFFF)
		case 1:
			binary.BigEndian.PutUint16(b[2*w:], 0)
		}
	}
	return Within(p, b)
}

// Within returns b with its first p.Bits() bits replaced by p's: an
// arbitrary address moved inside p.
func Within(p netip.Prefix, b [16]byte) netip.Addr {
	pb := p.Addr().As16()
	for i := 0; i < p.Bits(); i++ {
		mask := byte(0x80 >> (i % 8))
		b[i/8] = b[i/8]&^mask | pb[i/8]&mask
	}
	return netip.AddrFrom16(b)
}

// SameSum reports whether two one's-complement sums are equal, counting
// negative zero (0xFFFF) as zero: a checksum-neutral rewrite may turn one
// into the other.
func SameSum(a, b uint16) bool { return norm(a) == norm(b) }

func norm(s uint16) uint16 {
	if s == 0xFFFF {
		return 0
	}
	return s
}

package rfc6296

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/multihomed/multihomed/routing"
)

// Drop reasons. The translator returns them (wrapped) for packets that RFC
// 6296 says must not be translated; datapaths count them as drops.
var (
	// ErrSubnetFFFF: with prefixes of /48 or shorter, the subnet word (bits
	// 48..63) of the address being translated is 0xFFFF. In one's-complement
	// arithmetic 0xFFFF and 0x0000 are both zero, so the word could not be
	// mapped one to one (RFC 6296 sections 3.2, 3.3 and 4.2).
	ErrSubnetFFFF = errors.New("subnet word is 0xFFFF")
	// ErrIIDAllOnes: with prefixes longer than /48, none of the words 64..79,
	// 80..95, 96..111, 112..127 is different from 0xFFFF, so there is no word
	// to carry the adjustment (RFC 6296 section 3.5; the all-ones IID is
	// reserved for subnet anycast, RFC 2526).
	ErrIIDAllOnes = errors.New("interface identifier is all ones")
	// ErrZeroIID: the address before or after translation has an all-zero
	// interface identifier, the Subnet-Router anycast address (RFC 4291
	// section 2.6.1). Translating it would turn an anycast address into a
	// unicast one or the other way round, so it is dropped.
	ErrZeroIID = errors.New("interface identifier is all zeros")
)

// Translator is one compiled mapping: the RFC 6296 arithmetic for one
// internal/external prefix pair. It is immutable and safe for concurrent use.
type Translator struct {
	m routing.NPTMapping
	// bits is the length both prefixes are extended to (RFC 6296 section
	// 3.1: the shorter one is extended with zeros).
	bits     int
	internal netip.Prefix // m.Internal extended to bits
	external netip.Prefix // m.External extended to bits
	// adj is the adjustment added on the way out: the one's-complement sum
	// of the internal prefix minus that of the external prefix (RFC 6296
	// section 3.1). The way in adds its one's-complement negation.
	adj uint16
}

// maxPrefixLen is the longest prefix handled: with /64 the adjustment still
// lands in the IID (RFC 6296 section 3.5), and longer prefixes are out of
// scope for the RFC's use of NPTv6 (and rejected by ip6t_NPT).
const maxPrefixLen = 64

// NewTranslator validates m and precomputes its adjustment. Errors name the
// field and the fix.
func NewTranslator(m routing.NPTMapping) (*Translator, error) {
	if err := checkPrefix("internal", m.Internal); err != nil {
		return nil, err
	}
	if err := checkPrefix("external", m.External); err != nil {
		return nil, err
	}
	// RFC 6296 section 3.1: "the translation function first ensures that the
	// internal and external prefixes are the same length, extending the
	// shorter of the two with zeroes if necessary." Addresses of the longer
	// side's extra bits that are not zero are outside the mapping.
	bits := max(m.Internal.Bits(), m.External.Bits())
	t := &Translator{
		m:        m,
		bits:     bits,
		internal: netip.PrefixFrom(m.Internal.Addr(), bits),
		external: netip.PrefixFrom(m.External.Addr(), bits),
	}
	if t.internal.Overlaps(t.external) {
		return nil, fmt.Errorf("nptv6: %s: internal %s and external %s overlap; use disjoint prefixes", m.Interface, m.Internal, m.External)
	}
	t.adj = onesSub(SumAddr(t.internal.Addr()), SumAddr(t.external.Addr()))
	return t, nil
}

func checkPrefix(field string, p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("nptv6: %s prefix is not set; give an IPv6 prefix such as fd7a:5e1d:9c00::/48", field)
	case !p.Addr().Is6() || p.Addr().Is4In6():
		return fmt.Errorf("nptv6: %s prefix %s is not IPv6; NPTv6 maps IPv6 prefixes only", field, p)
	case p.Addr().Zone() != "":
		return fmt.Errorf("nptv6: %s prefix %s has a zone; drop the %%zone", field, p)
	case p.Bits() == 0 || p.Bits() > maxPrefixLen:
		return fmt.Errorf("nptv6: %s prefix %s: length must be 1..%d (RFC 6296 section 3.5)", field, p, maxPrefixLen)
	case p.Masked() != p:
		return fmt.Errorf("nptv6: %s prefix %s has bits set after /%d; use %s", field, p, p.Bits(), p.Masked())
	}
	return nil
}

// Mapping returns the mapping t was built from.
func (t *Translator) Mapping() routing.NPTMapping { return t.m }

// Bits is the effective prefix length: the longer of the two prefixes.
func (t *Translator) Bits() int { return t.bits }

// Internal is the internal prefix extended to Bits: the addresses Outbound
// translates.
func (t *Translator) Internal() netip.Prefix { return t.internal }

// External is the external prefix extended to Bits: the addresses Inbound
// translates.
func (t *Translator) External() netip.Prefix { return t.external }

// Adjustment is the 16-bit one's-complement value added to the chosen word on
// the way out (RFC 6296 section 3.1). Datapaths program it as is.
func (t *Translator) Adjustment() uint16 { return t.adj }

// Outbound maps an internal address to its external address (RFC 6296
// section 3.2). The address must be inside Internal.
func (t *Translator) Outbound(a netip.Addr) (netip.Addr, error) {
	if !t.internal.Contains(a) {
		return netip.Addr{}, fmt.Errorf("nptv6: %s is not inside internal prefix %s", a, t.internal)
	}
	b, err := mapAddr(a.As16(), t.external.Addr().As16(), t.bits, t.adj)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nptv6: outbound %s: %w", a, err)
	}
	return netip.AddrFrom16(b), nil
}

// Inbound maps an external address back to its internal address (RFC 6296
// section 3.3). The address must be inside External.
func (t *Translator) Inbound(a netip.Addr) (netip.Addr, error) {
	if !t.external.Contains(a) {
		return netip.Addr{}, fmt.Errorf("nptv6: %s is not inside external prefix %s", a, t.external)
	}
	b, err := mapAddr(a.As16(), t.internal.Addr().As16(), t.bits, ^t.adj)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nptv6: inbound %s: %w", a, err)
	}
	return netip.AddrFrom16(b), nil
}

// MapOutbound is Outbound on a raw address the caller already knows is
// inside Internal, for the packet path: it skips the check and the error
// wrapping.
func (t *Translator) MapOutbound(a [16]byte) ([16]byte, error) {
	return mapAddr(a, t.external.Addr().As16(), t.bits, t.adj)
}

// MapInbound is Inbound on a raw address the caller already knows is
// inside External (see MapOutbound).
func (t *Translator) MapInbound(a [16]byte) ([16]byte, error) {
	return mapAddr(a, t.internal.Addr().As16(), t.bits, ^t.adj)
}

// mapAddr replaces the first bits bits of a with those of to and adds adj to
// the word RFC 6296 sections 3.4 and 3.5 choose. a is already known to be
// inside the source prefix.
func mapAddr(a, to [16]byte, bits int, adj uint16) ([16]byte, error) {
	if zeroIID(a) {
		return a, ErrZeroIID
	}
	w, err := adjustWord(a, bits)
	if err != nil {
		return a, err
	}
	out := a
	full := bits / 8
	copy(out[:full], to[:full])
	if rem := bits % 8; rem != 0 {
		mask := byte(0xFF << (8 - rem))
		out[full] = to[full]&mask | a[full]&^mask
	}
	// RFC 6296 sections 3.2 and 3.3: add the adjustment (one's complement)
	// to the chosen word; "if the result is 0xFFFF, it is overwritten as
	// zero", so a translated word is never 0xFFFF and the mapping stays one
	// to one.
	v := OnesAdd(binary.BigEndian.Uint16(out[2*w:]), adj)
	if v == 0xFFFF {
		v = 0
	}
	binary.BigEndian.PutUint16(out[2*w:], v)
	if zeroIID(out) {
		return a, ErrZeroIID
	}
	return out, nil
}

// adjustWord returns the index (0..7) of the 16-bit word that carries the
// adjustment.
func adjustWord(a [16]byte, bits int) (int, error) {
	if bits <= 48 {
		// RFC 6296 section 3.4: /48 or shorter: bits 48..63. Subnet
		// 0xFFFF cannot be mapped (section 4.2: it "must not" be used).
		if binary.BigEndian.Uint16(a[6:]) == 0xFFFF {
			return 0, ErrSubnetFFFF
		}
		return 3, nil
	}
	// RFC 6296 section 3.5: longer than /48: the first of the words 64..79,
	// 80..95, 96..111, 112..127 that is not 0xFFFF.
	for w := 4; w < 8; w++ {
		if binary.BigEndian.Uint16(a[2*w:]) != 0xFFFF {
			return w, nil
		}
	}
	return 0, ErrIIDAllOnes
}

func zeroIID(a [16]byte) bool {
	return binary.BigEndian.Uint64(a[8:]) == 0
}

// OnesAdd is 16-bit one's-complement addition (end-around carry).
func OnesAdd(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s&0xFFFF + s>>16)
}

// onesSub is a minus b in one's complement: a plus the complement of b.
func onesSub(a, b uint16) uint16 { return OnesAdd(a, ^b) }

// SumAddr is the one's-complement sum of the eight 16-bit words of a.
func SumAddr(a netip.Addr) uint16 {
	b := a.As16()
	return Sum16(b[:])
}

// Sum16 is the one's-complement sum of b as big-endian 16-bit words; an odd
// trailing byte is padded with zero (RFC 1071).
func Sum16(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xFFFF + s>>16
	}
	return uint16(s)
}

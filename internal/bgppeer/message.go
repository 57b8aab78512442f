package bgppeer

import (
	"encoding/binary"
	"net/netip"
)

// Message types (RFC 4271 section 4.1).
const (
	TypeOpen         = 1
	TypeUpdate       = 2
	TypeNotification = 3
	TypeKeepalive    = 4
)

// Path attribute flags (RFC 4271 section 4.3).
const (
	FlagOptional   = 0x80
	FlagTransitive = 0x40
	FlagPartial    = 0x20
	FlagExtLen     = 0x10
)

// Path attribute type codes used by the tests.
const (
	AttrOrigin    = 1
	AttrASPath    = 2
	AttrNextHop   = 3
	AttrMED       = 4
	AttrLocalPref = 5
	AttrMPReach   = 14
)

// HeaderLen is the length of the BGP header; MaxLen the largest message
// without the RFC 8654 extended message capability.
const (
	HeaderLen = 19
	MaxLen    = 4096
)

// Message frames body as a BGP message of type typ. The length field is
// whatever len(body) gives, even above MaxLen.
func Message(typ uint8, body []byte) []byte {
	m := make([]byte, HeaderLen, HeaderLen+len(body))
	for i := range 16 {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], uint16(HeaderLen+len(body)))
	m[18] = typ
	return append(m, body...)
}

// Keepalive is a KEEPALIVE message.
func Keepalive() []byte { return Message(TypeKeepalive, nil) }

// Open is an OPEN for asn (AS_TRANS in the 2-octet field when it does not
// fit) with the 4-octet AS (RFC 6793) and IPv4 and IPv6 unicast
// multiprotocol (RFC 4760) capabilities.
func Open(asn uint32, hold uint16, id netip.Addr) []byte {
	my := uint16(23456)
	if asn < 65536 {
		my = uint16(asn)
	}
	caps := []byte{
		65, 4, 0, 0, 0, 0, // 4-octet AS
		1, 4, 0, 1, 0, 1, // multiprotocol: AFI 1, SAFI 1
		1, 4, 0, 2, 0, 1, // multiprotocol: AFI 2, SAFI 1
	}
	binary.BigEndian.PutUint32(caps[2:], asn)
	body := []byte{4, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(body[1:], my)
	binary.BigEndian.PutUint16(body[3:], hold)
	id4 := id.As4()
	body = append(body, id4[:]...)
	body = append(body, byte(2+len(caps)), 2, byte(len(caps)))
	return Message(TypeOpen, append(body, caps...))
}

// Update is an UPDATE withdrawing withdrawn and announcing nlri with the
// path attributes attrs (concatenated Attr results, or any bytes).
func Update(withdrawn []netip.Prefix, attrs []byte, nlri []netip.Prefix) []byte {
	w := Prefixes(withdrawn...)
	body := binary.BigEndian.AppendUint16(nil, uint16(len(w)))
	body = append(body, w...)
	body = binary.BigEndian.AppendUint16(body, uint16(len(attrs)))
	body = append(body, attrs...)
	return Message(TypeUpdate, append(body, Prefixes(nlri...)...))
}

// Prefixes encodes prefixes as NLRI: length in bits, then the significant
// octets.
func Prefixes(ps ...netip.Prefix) []byte {
	var out []byte
	for _, p := range ps {
		a := p.Addr().AsSlice()
		out = append(out, byte(p.Bits()))
		out = append(out, a[:(p.Bits()+7)/8]...)
	}
	return out
}

// Attr encodes one path attribute; the extended length flag is added when
// value needs it.
func Attr(flags, typ uint8, value []byte) []byte {
	if len(value) > 255 {
		flags |= FlagExtLen
	}
	return AttrLen(flags, typ, len(value), value)
}

// AttrLen encodes one path attribute with length field n whatever
// len(value) is, to build attributes that lie about their length.
func AttrLen(flags, typ uint8, n int, value []byte) []byte {
	out := []byte{flags, typ}
	if flags&FlagExtLen != 0 {
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	} else {
		out = append(out, byte(n))
	}
	return append(out, value...)
}

// Origin is a well-formed ORIGIN attribute (0 IGP, 1 EGP, 2 INCOMPLETE).
func Origin(v uint8) []byte { return Attr(FlagTransitive, AttrOrigin, []byte{v}) }

// ASPath is an AS_PATH of one AS_SEQUENCE of 4-octet ASNs.
func ASPath(asns ...uint32) []byte {
	return ASPathSegments(Segment{Type: 2, ASNs: asns})
}

// Segment is one AS_PATH segment: Type 1 AS_SET, 2 AS_SEQUENCE,
// 3 AS_CONFED_SEQUENCE, 4 AS_CONFED_SET (RFC 4271, RFC 5065).
type Segment struct {
	Type uint8
	ASNs []uint32
}

// ASPathSegments is an AS_PATH of the segments, 4-octet ASNs; none gives
// an empty AS_PATH.
func ASPathSegments(segs ...Segment) []byte {
	var v []byte
	for _, s := range segs {
		v = append(v, s.Type, byte(len(s.ASNs)))
		for _, a := range s.ASNs {
			v = binary.BigEndian.AppendUint32(v, a)
		}
	}
	return Attr(FlagTransitive, AttrASPath, v)
}

// NextHop is an IPv4 NEXT_HOP attribute.
func NextHop(a netip.Addr) []byte {
	b := a.As4()
	return Attr(FlagTransitive, AttrNextHop, b[:])
}

// MED is a MULTI_EXIT_DISC attribute.
func MED(v uint32) []byte {
	return Attr(FlagOptional, AttrMED, binary.BigEndian.AppendUint32(nil, v))
}

// MPReach is an MP_REACH_NLRI attribute for IPv4 unicast with the raw
// next-hop bytes nh (any length) and nlri.
func MPReach(nh []byte, nlri ...netip.Prefix) []byte {
	v := []byte{0, 1, 1, byte(len(nh))}
	v = append(v, nh...)
	v = append(v, 0) // reserved
	v = append(v, Prefixes(nlri...)...)
	return Attr(FlagOptional, AttrMPReach, v)
}

// MPReach6 is an MP_REACH_NLRI attribute for IPv6 unicast with next hop
// nh and nlri.
func MPReach6(nh netip.Addr, nlri ...netip.Prefix) []byte {
	b := nh.As16()
	v := []byte{0, 2, 1, 16}
	v = append(v, b[:]...)
	v = append(v, 0) // reserved
	v = append(v, Prefixes(nlri...)...)
	return Attr(FlagOptional, AttrMPReach, v)
}

// Concat joins attributes into one path attribute field.
func Concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

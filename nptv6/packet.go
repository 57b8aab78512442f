package nptv6

import (
	"fmt"
	"net/netip"
	"slices"
)

// Direction says which way a packet crosses the translator.
type Direction uint8

const (
	// Outbound is internal to external: the packet leaves through the uplink
	// and its source address is translated (RFC 6296 section 3.2).
	Outbound Direction = iota + 1
	// Inbound is external to internal: the packet arrives on the uplink and
	// its destination address is translated (RFC 6296 section 3.3).
	Inbound
)

// String returns "outbound" or "inbound".
func (d Direction) String() string {
	switch d {
	case Outbound:
		return "outbound"
	case Inbound:
		return "inbound"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Verdict is what a translator does with one packet.
type Verdict uint8

const (
	// Pass: no mapping covers the packet; it goes on unchanged.
	Pass Verdict = iota
	// Translated: the packet's address (and, for an ICMPv6 error, the
	// embedded packet's address) was rewritten; it goes on.
	Translated
	// Hairpinned: an outbound packet addressed to the site's own external
	// prefix had both addresses translated and must be sent back inside
	// (RFC 6296 section 4.3).
	Hairpinned
	// Drop: RFC 6296 says the packet must not be translated; it is
	// discarded.
	Drop
)

// String returns the verdict's lower-case name.
func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Translated:
		return "translated"
	case Hairpinned:
		return "hairpinned"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// Result reports what Table.Process did with a packet.
type Result struct {
	// Verdict is what happens to the packet.
	Verdict Verdict
	// Index is the position in the table's mappings of the mapping that
	// matched, or -1 with Pass.
	Index int
	// Err is the reason for Drop: it wraps ErrSubnetFFFF, ErrIIDAllOnes or
	// ErrZeroIID.
	Err error
}

// IPv6 and ICMPv6 layout (RFC 8200 section 3, RFC 4443 section 2.1).
const (
	ipv6HeaderLen = 40
	offSrc        = 8
	offDst        = 24
	offNextHeader = 6
	protoICMPv6   = 58
	icmpHeaderLen = 8
	// The embedded ("invoking") packet of an ICMPv6 error starts after the
	// outer IPv6 header and the 8-byte ICMPv6 header.
	offEmbedded    = ipv6HeaderLen + icmpHeaderLen
	offEmbeddedSrc = offEmbedded + offSrc
	offEmbeddedDst = offEmbedded + offDst
	minICMPError   = offEmbedded + ipv6HeaderLen
)

// Table is the set of mappings of one uplink, compiled. It is immutable and
// safe for concurrent use.
type Table struct {
	ts []*Translator
}

// NewTable validates the mappings of one interface and compiles them. Two
// mappings on the same interface may not overlap in their internal or
// external prefixes: a packet must match at most one.
func NewTable(ms []Mapping) (*Table, error) {
	tb := &Table{}
	for i, m := range ms {
		t, err := NewTranslator(m)
		if err != nil {
			return nil, fmt.Errorf("mappings[%d]: %w", i, err)
		}
		for j, o := range tb.ts {
			if o.Mapping().Interface != m.Interface {
				continue
			}
			if o.Internal().Overlaps(t.Internal()) || o.External().Overlaps(t.External()) ||
				o.Internal().Overlaps(t.External()) || o.External().Overlaps(t.Internal()) {
				return nil, fmt.Errorf("mappings[%d] (%s) overlaps mappings[%d] (%s) on %s; give each mapping on an interface its own prefixes", i, m, j, o.Mapping(), m.Interface)
			}
		}
		tb.ts = append(tb.ts, t)
	}
	return tb, nil
}

// Translators returns the compiled mappings in table order.
func (tb *Table) Translators() []*Translator { return slices.Clone(tb.ts) }

func (tb *Table) find(iface string, a netip.Addr, external bool) int {
	for i, t := range tb.ts {
		if t.Mapping().Interface != iface {
			continue
		}
		p := t.Internal()
		if external {
			p = t.External()
		}
		if p.Contains(a) {
			return i
		}
	}
	return -1
}

// Process translates one IPv6 packet (starting at the IPv6 header) in place,
// as the translator on iface does when the packet crosses it in direction
// dir. It never changes the packet's length and never panics, whatever the
// bytes. Packets that are not IPv6 or are too short pass unchanged.
//
// Outbound: a source inside a mapping's internal prefix is translated; if
// the packet is an ICMPv6 error (types 1-4, RFC 4443), the embedded packet's
// destination is translated too when it is inside that internal prefix; if
// the destination is inside a hairpin mapping's external prefix it is
// translated inward and the verdict is Hairpinned. An ICMPv6 error from a
// source outside every internal prefix (the edge itself) has its embedded
// destination translated if that is internal.
//
// Inbound: a destination inside a mapping's external prefix is translated;
// for an ICMPv6 error the embedded packet's source is translated too when it
// is inside that external prefix.
//
// Only an ICMPv6 header that directly follows the IPv6 header is looked at,
// as ip6t_NPT does. An embedded address that cannot be translated is left as
// it is: the error is still delivered.
//
// No checksum is touched: the mapping is checksum-neutral (RFC 6296 section
// 3.1), for the outer transport header and for the ICMPv6 checksum, which
// covers the embedded packet.
func (tb *Table) Process(pkt []byte, iface string, dir Direction) Result {
	if len(pkt) < ipv6HeaderLen || pkt[0]>>4 != 6 {
		return Result{Verdict: Pass, Index: -1}
	}
	switch dir {
	case Outbound:
		return tb.outbound(pkt, iface)
	case Inbound:
		return tb.inbound(pkt, iface)
	}
	return Result{Verdict: Pass, Index: -1}
}

func (tb *Table) outbound(pkt []byte, iface string) Result {
	src := addrAt(pkt, offSrc)
	i := tb.find(iface, src, false)
	if i < 0 {
		return tb.outboundForeignError(pkt, iface)
	}
	t := tb.ts[i]
	nsrc, err := t.MapOutbound(src.As16())
	if err != nil {
		return Result{Verdict: Drop, Index: i, Err: fmt.Errorf("nptv6: %s outbound source %s: %w", iface, src, err)}
	}
	v := Translated
	var ndst [16]byte
	dst := addrAt(pkt, offDst)
	// RFC 6296 section 4.3 (hairpinning, RFC 4787 REQ-9): a packet from
	// inside to one of the site's own external addresses comes back in with
	// both addresses translated, as if it had left and come back.
	if j := tb.find(iface, dst, true); j >= 0 && tb.ts[j].Mapping().Hairpin {
		h := tb.ts[j]
		ndst, err = h.MapInbound(dst.As16())
		if err != nil {
			return Result{Verdict: Drop, Index: j, Err: fmt.Errorf("nptv6: %s hairpin destination %s: %w", iface, dst, err)}
		}
		v = Hairpinned
	}
	copy(pkt[offSrc:], nsrc[:])
	if v == Hairpinned {
		copy(pkt[offDst:], ndst[:])
		return Result{Verdict: v, Index: i}
	}
	// ICMPv6 error sent from inside about a packet that came from outside:
	// the embedded packet's destination is our internal address and must be
	// shown as the external one the sender used.
	if isICMPError(pkt) {
		ed := addrAt(pkt, offEmbeddedDst)
		if t.Internal().Contains(ed) {
			if b, err := t.MapOutbound(ed.As16()); err == nil {
				copy(pkt[offEmbeddedDst:], b[:])
			}
		}
	}
	return Result{Verdict: v, Index: i}
}

// outboundForeignError handles an ICMPv6 error leaving through the uplink
// whose source is not internal (the edge router itself, or a router inside
// with a global address) but which quotes a packet sent to an internal
// address: typically a Packet Too Big from the edge for an inbound packet
// that does not fit the LAN link. The quoted destination is translated so
// the sender can match the error; without it path MTU discovery toward the
// site fails. ip6t_NPT does not do this: its rules only see internal
// sources.
func (tb *Table) outboundForeignError(pkt []byte, iface string) Result {
	if !isICMPError(pkt) {
		return Result{Verdict: Pass, Index: -1}
	}
	ed := addrAt(pkt, offEmbeddedDst)
	j := tb.find(iface, ed, false)
	if j < 0 {
		return Result{Verdict: Pass, Index: -1}
	}
	t := tb.ts[j]
	b, err := t.MapOutbound(ed.As16())
	if err != nil {
		return Result{Verdict: Pass, Index: -1}
	}
	copy(pkt[offEmbeddedDst:], b[:])
	return Result{Verdict: Translated, Index: j}
}

func (tb *Table) inbound(pkt []byte, iface string) Result {
	dst := addrAt(pkt, offDst)
	i := tb.find(iface, dst, true)
	if i < 0 {
		return Result{Verdict: Pass, Index: -1}
	}
	t := tb.ts[i]
	ndst, err := t.MapInbound(dst.As16())
	if err != nil {
		return Result{Verdict: Drop, Index: i, Err: fmt.Errorf("nptv6: %s inbound destination %s: %w", iface, dst, err)}
	}
	copy(pkt[offDst:], ndst[:])
	// ICMPv6 error from outside about a packet we sent: the embedded source
	// is our external address; the internal host must see its own address
	// to match the error to its socket.
	if isICMPError(pkt) {
		es := addrAt(pkt, offEmbeddedSrc)
		if t.External().Contains(es) {
			if b, err := t.MapInbound(es.As16()); err == nil {
				copy(pkt[offEmbeddedSrc:], b[:])
			}
		}
	}
	return Result{Verdict: Translated, Index: i}
}

// isICMPError reports whether pkt is an ICMPv6 error message of type 1
// (destination unreachable), 2 (packet too big), 3 (time exceeded) or 4
// (parameter problem), RFC 4443 section 3, long enough to carry a whole
// embedded IPv6 header.
func isICMPError(pkt []byte) bool {
	if len(pkt) < minICMPError || pkt[offNextHeader] != protoICMPv6 {
		return false
	}
	typ := pkt[ipv6HeaderLen]
	return typ >= 1 && typ <= 4
}

func addrAt(pkt []byte, off int) netip.Addr {
	return netip.AddrFrom16([16]byte(pkt[off : off+16]))
}

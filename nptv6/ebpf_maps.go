package nptv6

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
)

// How mappings are encoded in the BPF maps (bpf/npt.c: npt_out and npt_in,
// LPM tries keyed by interface and prefix; npt_stats, per-CPU counters by
// slot) and read back.

// maxMappings must match MAX_MAPPINGS in bpf/npt.c.
const maxMappings = 1024

// entry is one mapping as stored in the maps.
type entry struct {
	key nptNptKey
	val nptNptMapping
}

func prefixKey(ifindex int, p netip.Prefix) nptNptKey {
	a := p.Addr().As16()
	return nptNptKey{Prefixlen: uint32(32 + p.Bits()), Ifindex: uint32(ifindex), Addr: [8]uint8(a[:8])}
}

func prefixBytes(p netip.Prefix) [8]uint8 {
	a := p.Addr().As16()
	return [8]uint8(a[:8])
}

func maskBytes(bits int) [8]uint8 {
	var m [8]uint8
	binary.BigEndian.PutUint64(m[:], ^uint64(0)<<(64-bits))
	return m
}

// wireAdj stores adj so that its bytes in memory are in network byte
// order, as the program adds it to words loaded straight from the packet.
func wireAdj(adj uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], adj)
	return binary.NativeEndian.Uint16(b[:])
}

// Flags of npt_mapping, as in bpf/npt.c.
const (
	flagHairpin      = 1 // this mapping hairpins
	flagIfaceHairpin = 2 // some mapping on the device hairpins (npt_out)
)

// entries returns the out and in entries for t on ifindex, with slot id.
// ifaceHairpin tells whether any mapping on the device hairpins.
func entries(t *Translator, ifindex int, id uint32, ifaceHairpin bool) (out, in entry) {
	m := t.Mapping()
	var flags uint8
	if m.Hairpin {
		flags = flagHairpin
	}
	base := nptNptMapping{
		Mask: maskBytes(t.Bits()), Bits: uint8(t.Bits()), Flags: flags,
		InternalBits: uint8(m.Internal.Bits()), ExternalBits: uint8(m.External.Bits()), Id: id,
	}
	out = entry{key: prefixKey(ifindex, t.Internal()), val: base}
	if ifaceHairpin {
		out.val.Flags |= flagIfaceHairpin
	}
	out.val.From, out.val.To, out.val.Adj = prefixBytes(t.Internal()), prefixBytes(t.External()), wireAdj(t.Adjustment())
	in = entry{key: prefixKey(ifindex, t.External()), val: base}
	in.val.From, in.val.To, in.val.Adj = prefixBytes(t.External()), prefixBytes(t.Internal()), wireAdj(^t.Adjustment())
	return out, in
}

func readEntries(m *ebpf.Map) (map[nptNptKey]nptNptMapping, error) {
	out := map[nptNptKey]nptNptMapping{}
	var k nptNptKey
	var v nptNptMapping
	it := m.Iterate()
	for it.Next(&k, &v) {
		out[k] = v
	}
	return out, it.Err()
}

// mappingsLocked reads the mappings back from npt_out. Runs inside the
// namespace.
func (e *EBPF) mappingsLocked() ([]Mapping, error) {
	have, err := readEntries(e.objs.NptOut)
	if err != nil {
		return nil, fmt.Errorf("nptv6: read npt_out: %w", err)
	}
	var ms []Mapping
	for k, v := range have {
		m, err := decodeMapping(k, v)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return sortMappings(ms), nil
}

func decodeMapping(k nptNptKey, v nptNptMapping) (Mapping, error) {
	name := fmt.Sprintf("ifindex:%d", k.Ifindex)
	if ifi, err := net.InterfaceByIndex(int(k.Ifindex)); err == nil {
		name = ifi.Name
	}
	var in, ex [16]byte
	copy(in[:], v.From[:])
	copy(ex[:], v.To[:])
	return Mapping{
		Interface: name,
		Internal:  netip.PrefixFrom(netip.AddrFrom16(in), int(v.InternalBits)).Masked(),
		External:  netip.PrefixFrom(netip.AddrFrom16(ex), int(v.ExternalBits)).Masked(),
		Hairpin:   v.Flags&flagHairpin != 0,
	}, nil
}

// Mappings implements Datapath.
func (e *EBPF) Mappings(ctx context.Context) ([]Mapping, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ms []Mapping
	err := inNetns(e.opts.NetNS, func() (err error) {
		ms, err = e.mappingsLocked()
		return err
	})
	return ms, err
}

// Counters implements Datapath: per-CPU counters summed.
func (e *EBPF) Counters(ctx context.Context) ([]Counters, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Counters
	err := inNetns(e.opts.NetNS, func() error {
		have, err := readEntries(e.objs.NptOut)
		if err != nil {
			return err
		}
		for k, v := range have {
			m, err := decodeMapping(k, v)
			if err != nil {
				return err
			}
			var per []nptNptCounters
			if err := e.objs.NptStats.Lookup(v.Id, &per); err != nil {
				return fmt.Errorf("nptv6: read counters of %s: %w", m, err)
			}
			c := Counters{Mapping: m}
			for _, p := range per {
				c.OutPackets += p.OutPackets
				c.OutBytes += p.OutBytes
				c.OutDrops += p.OutDrops
				c.InPackets += p.InPackets
				c.InBytes += p.InBytes
				c.InDrops += p.InDrops
				c.Hairpinned += p.Hairpinned
			}
			out = append(out, c)
		}
		return nil
	})
	byMapping := map[Mapping]Counters{}
	var ms []Mapping
	for _, c := range out {
		byMapping[c.Mapping] = c
		ms = append(ms, c.Mapping)
	}
	sorted := make([]Counters, 0, len(out))
	for _, m := range sortMappings(ms) {
		sorted = append(sorted, byMapping[m])
	}
	return sorted, err
}

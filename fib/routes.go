package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Routes installs the routes BGP accepted into one table through kernel
// nexthop objects (Linux 5.3 and later), so that what a route points at is
// one object shared by many routes: moving every route of a failed uplink
// is one nexthop replace, not one route change per prefix
// (prefix-independent convergence).
//
// The caller chooses the numbers: a leg is one uplink's next hop in one
// family (device and gateway); a group is what routes point at (normally
// the uplink's own leg; on its failure, the legs of the uplinks that take
// over). vishvananda/netlink v1.3.1 has no nexthop objects and no RTA_NH_ID
// on routes, so the messages are built here on its low-level request API.
//
// Everything it creates carries its protocol number; it never touches a
// nexthop or route with another. Its methods are not safe for concurrent
// use.
type Routes struct {
	h        *netlink.Handle // device lookups and route dumps (strict) in the namespace
	sock     *nl.NetlinkSocket
	table    uint32
	protocol uint8
	seq      uint32
}

// rtaNHID is RTA_NH_ID (include/uapi/linux/rtnetlink.h), missing from
// x/sys/unix: the nexthop object a route uses.
const rtaNHID = 30

// window bounds the requests in flight before their acknowledgements are
// read, so the socket's receive buffer never overflows (a lost
// acknowledgement would leave acks waiting for it).
const window = 128

// NewRoutes opens netlink in the named namespace ("" for the current one)
// for routes in table with the given protocol number.
func NewRoutes(netnsName string, table, protocol int) (*Routes, error) {
	if err := checkEgressTarget(table, protocol); err != nil {
		return nil, err
	}
	h, err := newDumpHandle(netnsName)
	if err != nil {
		return nil, err
	}
	ns := vnetns.None()
	if netnsName != "" {
		if ns, err = vnetns.GetFromName(netnsName); err != nil {
			h.Close()
			return nil, fmt.Errorf("fib: open namespace %s: %w", netnsName, err)
		}
		defer ns.Close()
	}
	s, err := nl.GetNetlinkSocketAt(ns, vnetns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("fib: open netlink for routes in %q: %w", netnsName, err)
	}
	// A kernel that stops answering must not hang the caller.
	if err := s.SetReceiveTimeout(&unix.Timeval{Sec: 10}); err != nil {
		s.Close()
		h.Close()
		return nil, fmt.Errorf("fib: netlink receive timeout: %w", err)
	}
	return &Routes{h: h, sock: s, table: uint32(table), protocol: uint8(protocol)}, nil
}

// Close releases the socket. Routes and nexthops stay.
func (r *Routes) Close() {
	r.sock.Close()
	r.h.Close()
}

// SetLeg creates or replaces nexthop id: gw through the device named dev.
func (r *Routes) SetLeg(id uint32, dev string, gw netip.Addr) error {
	link, err := r.h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("fib: nexthop %d: device %s: %w", id, dev, err)
	}
	return r.SetLegIndex(id, link.Attrs().Index, gw)
}

// LinkIndex returns the index of the device named dev.
func (r *Routes) LinkIndex(dev string) (int, error) {
	link, err := r.h.LinkByName(dev)
	if err != nil {
		return 0, fmt.Errorf("fib: device %s: %w", dev, err)
	}
	return link.Attrs().Index, nil
}

// SetLegIndex is SetLeg with the device's index.
func (r *Routes) SetLegIndex(id uint32, ifindex int, gw netip.Addr) error {
	fam := uint8(unix.AF_INET6)
	if gw.Is4() {
		fam = unix.AF_INET
	}
	req := r.nexthopRequest(fam, id)
	req.AddData(nl.NewRtAttr(unix.NHA_OIF, nl.Uint32Attr(uint32(ifindex))))
	req.AddData(nl.NewRtAttr(unix.NHA_GATEWAY, gw.AsSlice()))
	if err := r.exec(req); err != nil {
		return fmt.Errorf("fib: set nexthop %d via %s: %w", id, gw, err)
	}
	return nil
}

// SetGroup creates or replaces nexthop group id with the legs (equal
// weights). Replacing a group moves every route that uses it at once.
func (r *Routes) SetGroup(id uint32, legs ...uint32) error {
	if len(legs) == 0 {
		return fmt.Errorf("fib: nexthop group %d: no legs (use Blackhole)", id)
	}
	req := r.nexthopRequest(unix.AF_UNSPEC, id)
	grp := make([]byte, 8*len(legs))
	for i, l := range legs {
		binary.NativeEndian.PutUint32(grp[8*i:], l) // struct nexthop_grp: id, weight-1 = 0
	}
	req.AddData(nl.NewRtAttr(unix.NHA_GROUP, grp))
	if err := r.exec(req); err != nil {
		return fmt.Errorf("fib: set nexthop group %d to %v: %w", id, legs, err)
	}
	return nil
}

// Blackhole makes nexthop id a leg that drops what uses it. The kernel
// does not let a replace turn a group into a single nexthop, so a group
// whose uplinks are all gone is set to this leg alone: a route to nowhere
// is better than one through a dead uplink or a fall-back to a less
// specific route the operator did not choose.
func (r *Routes) Blackhole(id uint32) error {
	// The kernel wants a family even here (EINVAL with AF_UNSPEC); the
	// leg still serves groups of either family, as with ip(8).
	req := r.nexthopRequest(unix.AF_INET, id)
	req.AddData(nl.NewRtAttr(unix.NHA_BLACKHOLE, nil))
	if err := r.exec(req); err != nil {
		return fmt.Errorf("fib: blackhole nexthop %d: %w", id, err)
	}
	return nil
}

// DeleteNexthop removes nexthop id; the kernel removes every route that
// uses it with it. Deleting an absent one is no error.
func (r *Routes) DeleteNexthop(id uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELNEXTHOP, unix.NLM_F_ACK)
	req.AddData(nhmsg{family: unix.AF_UNSPEC})
	req.AddData(nl.NewRtAttr(unix.NHA_ID, nl.Uint32Attr(id)))
	r.seq++
	req.Seq = r.seq
	err := r.sock.Send(req)
	if err == nil {
		err = r.acks(map[uint32]bool{req.Seq: true}, 0, true)
	}
	if err != nil {
		return fmt.Errorf("fib: delete nexthop %d: %w", id, err)
	}
	return nil
}

// Replace points every prefix at nexthop (or group) id, adding the routes
// that are missing. Requests are pipelined; the first error is returned
// after all were sent.
func (r *Routes) Replace(prefixes []netip.Prefix, id uint32) error {
	return r.batch(prefixes, false, func(p netip.Prefix) *nl.NetlinkRequest {
		req := r.routeRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, p)
		req.AddData(nl.NewRtAttr(rtaNHID, nl.Uint32Attr(id)))
		return req
	})
}

// Delete removes the routes to prefixes; absent ones are no error.
func (r *Routes) Delete(prefixes []netip.Prefix) error {
	return r.batch(prefixes, true, func(p netip.Prefix) *nl.NetlinkRequest {
		return r.routeRequest(unix.RTM_DELROUTE, 0, p)
	})
}

func (r *Routes) routeRequest(typ, flags int, p netip.Prefix) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags|unix.NLM_F_ACK)
	msg := nl.NewRtMsg()
	msg.Family = unix.AF_INET6
	if p.Addr().Is4() {
		msg.Family = unix.AF_INET
	}
	msg.Dst_len = uint8(p.Bits())
	msg.Protocol = r.protocol
	msg.Table = unix.RT_TABLE_UNSPEC
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, p.Masked().Addr().AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(r.table)))
	return req
}

func (r *Routes) nexthopRequest(family uint8, id uint32) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEXTHOP, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.AddData(nhmsg{family: family, protocol: r.protocol})
	req.AddData(nl.NewRtAttr(unix.NHA_ID, nl.Uint32Attr(id)))
	return req
}

// nhmsg is struct nhmsg of include/uapi/linux/nexthop.h.
type nhmsg struct {
	family, scope, protocol, resvd uint8
	flags                          uint32
}

func (m nhmsg) Len() int { return 8 }

func (m nhmsg) Serialize() []byte {
	b := []byte{m.family, m.scope, m.protocol, m.resvd, 0, 0, 0, 0}
	binary.NativeEndian.PutUint32(b[4:], m.flags)
	return b
}

// exec sends one request and waits for its acknowledgement.
func (r *Routes) exec(req *nl.NetlinkRequest) error {
	r.seq++
	req.Seq = r.seq
	if err := r.sock.Send(req); err != nil {
		return err
	}
	return r.acks(map[uint32]bool{req.Seq: true}, 0, false)
}

// batch sends one request per prefix, at most window unacknowledged.
func (r *Routes) batch(prefixes []netip.Prefix, ignoreMissing bool, build func(netip.Prefix) *nl.NetlinkRequest) error {
	var first error
	pending := map[uint32]bool{}
	for _, p := range prefixes {
		req := build(p)
		r.seq++
		req.Seq = r.seq
		if err := r.sock.Send(req); err != nil {
			return fmt.Errorf("fib: route %s: %w", p, err)
		}
		pending[req.Seq] = true
		if len(pending) >= window {
			if err := r.acks(pending, window/2, ignoreMissing); err != nil && first == nil {
				first = err
			}
		}
	}
	if err := r.acks(pending, 0, ignoreMissing); err != nil && first == nil {
		first = err
	}
	if first != nil {
		return fmt.Errorf("fib: routes in table %d: %w", r.table, first)
	}
	return nil
}

// acks reads acknowledgements until at most left requests are pending,
// returning the first error the kernel reported (with ignoreMissing, ESRCH
// and ENOENT are none: a delete of what is gone).
func (r *Routes) acks(pending map[uint32]bool, left int, ignoreMissing bool) error {
	var first error
	for len(pending) > left {
		msgs, _, err := r.sock.Receive()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if !pending[m.Header.Seq] {
				continue
			}
			delete(pending, m.Header.Seq)
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
				e := syscall.Errno(errno)
				if ignoreMissing && (e == unix.ENOENT || e == unix.ESRCH) {
					continue
				}
				if first == nil {
					first = e
				}
			}
		}
	}
	return first
}

// Purge removes every nexthop object with this Routes' protocol, and with
// them every route that uses one, then every remaining route of its
// protocol in its table: what an earlier run left behind (a crash, a
// restart, an uplink since removed). Groups go before legs, so no group
// is left pointing at a leg that is gone. It returns how many nexthops
// and routes it removed.
func (r *Routes) Purge() (nexthops, routes int, err error) {
	groups, legs, err := r.ownNexthops()
	if err != nil {
		return 0, 0, err
	}
	for _, id := range append(groups, legs...) {
		if err := r.DeleteNexthop(id); err != nil {
			return nexthops, 0, err
		}
		nexthops++
	}
	left, err := listRoutes(r.h, &netlink.Route{Table: int(r.table), Protocol: netlink.RouteProtocol(r.protocol)}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nexthops, 0, fmt.Errorf("fib: list routes of protocol %d in table %d: %w", r.protocol, r.table, err)
	}
	// Normally none are left: every route the installer adds uses a
	// nexthop; one by one is fine.
	for i := range left {
		if err := r.h.RouteDel(&left[i]); err != nil && !errors.Is(err, unix.ESRCH) {
			return nexthops, routes, fmt.Errorf("fib: delete stale route %s in table %d: %w", left[i].Dst, r.table, err)
		}
		routes++
	}
	return nexthops, routes, nil
}

// Sweep removes every route of this Routes' table and protocol whose
// prefix keep does not want, and returns how many it removed. The table
// is read once (a strict dump: only this table), route by route, so a
// table of a million routes is never held in memory.
func (r *Routes) Sweep(keep func(netip.Prefix) bool) (int, error) {
	var stale []netip.Prefix
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		stale = stale[:0]
		err = r.h.RouteListFilteredIter(netlink.FAMILY_ALL, &netlink.Route{Table: int(r.table), Protocol: netlink.RouteProtocol(r.protocol)},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL, func(rt netlink.Route) bool {
				var pfx netip.Prefix
				switch {
				case rt.Dst != nil:
					p, ok := netip.AddrFromSlice(rt.Dst.IP)
					if !ok {
						return true
					}
					ones, _ := rt.Dst.Mask.Size()
					pfx = netip.PrefixFrom(p.Unmap(), ones)
				case rt.Family == unix.AF_INET:
					pfx = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
				default:
					pfx = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
				}
				if !keep(pfx) {
					stale = append(stale, pfx)
				}
				return true
			})
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("fib: read table %d: %w", r.table, err)
	}
	if err := r.Delete(stale); err != nil {
		return 0, err
	}
	return len(stale), nil
}

// ownNexthops dumps the nexthop objects and returns the ids of those with
// this Routes' protocol, groups and legs apart.
func (r *Routes) ownNexthops() (groups, legs []uint32, err error) {
	nhs, err := r.dumpNexthops()
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nhs {
		if n.group {
			groups = append(groups, n.id)
		} else {
			legs = append(legs, n.id)
		}
	}
	return groups, legs, nil
}

// NexthopSpecs returns the nexthop objects with this Routes' protocol as
// the kernel has them: by id, a spec as LegSpec, GroupSpec and
// BlackholeSpec write them, so that a caller can tell which of the ones
// it set are still as it set them.
func (r *Routes) NexthopSpecs() (map[uint32]string, error) {
	nhs, err := r.dumpNexthops()
	if err != nil {
		return nil, err
	}
	out := make(map[uint32]string, len(nhs))
	for _, n := range nhs {
		out[n.id] = n.spec
	}
	return out, nil
}

// LegSpec is NexthopSpecs' spec of a leg: gw through device ifindex.
func LegSpec(ifindex int, gw netip.Addr) string { return fmt.Sprintf("via %s dev %d", gw, ifindex) }

// GroupSpec is NexthopSpecs' spec of a group of the legs, in order.
func GroupSpec(legs []uint32) string { return fmt.Sprintf("group %v", legs) }

// BlackholeSpec is NexthopSpecs' spec of a blackhole.
const BlackholeSpec = "blackhole"

// ownNexthop is one nexthop object of our protocol, as dumped.
type ownNexthop struct {
	id    uint32
	group bool
	spec  string
}

// dumpNexthops dumps the nexthop objects with this Routes' protocol. A
// dump the kernel interrupted is retried.
func (r *Routes) dumpNexthops() ([]ownNexthop, error) {
	for attempt := 0; attempt < 5; attempt++ {
		var out []ownNexthop
		interrupted := false
		req := nl.NewNetlinkRequest(unix.RTM_GETNEXTHOP, unix.NLM_F_DUMP)
		req.AddData(nhmsg{family: unix.AF_UNSPEC})
		r.seq++
		req.Seq = r.seq
		if err := r.sock.Send(req); err != nil {
			return nil, fmt.Errorf("fib: dump nexthops: %w", err)
		}
	read:
		for {
			msgs, _, err := r.sock.Receive()
			if err != nil {
				return nil, fmt.Errorf("fib: dump nexthops: %w", err)
			}
			for _, m := range msgs {
				if m.Header.Seq != req.Seq {
					continue
				}
				if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
					interrupted = true
				}
				switch m.Header.Type {
				case unix.NLMSG_DONE:
					break read
				case unix.NLMSG_ERROR:
					if len(m.Data) >= 4 {
						if errno := -int32(binary.NativeEndian.Uint32(m.Data[:4])); errno != 0 {
							return nil, fmt.Errorf("fib: dump nexthops: %w", syscall.Errno(errno))
						}
					}
					break read
				case unix.RTM_NEWNEXTHOP:
					if n, ok := parseNexthop(m.Data, r.protocol); ok {
						out = append(out, n)
					}
				}
			}
		}
		if !interrupted {
			return out, nil
		}
	}
	return nil, errors.New("fib: dump nexthops: interrupted 5 times")
}

// parseNexthop reads one RTM_NEWNEXTHOP message, when its protocol is
// protocol: its id, whether it is a group, and its spec.
func parseNexthop(data []byte, protocol uint8) (n ownNexthop, ok bool) {
	if len(data) < 8 || data[2] != protocol {
		return n, false
	}
	attrs, err := nl.ParseRouteAttr(data[8:])
	if err != nil {
		return n, false
	}
	oif := 0
	var gw netip.Addr
	var legs []uint32
	blackhole := false
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.NHA_ID:
			if len(a.Value) >= 4 {
				n.id, ok = binary.NativeEndian.Uint32(a.Value), true
			}
		case unix.NHA_GROUP:
			n.group = true
			for i := 0; i+8 <= len(a.Value); i += 8 { // struct nexthop_grp
				legs = append(legs, binary.NativeEndian.Uint32(a.Value[i:]))
			}
		case unix.NHA_OIF:
			if len(a.Value) >= 4 {
				oif = int(binary.NativeEndian.Uint32(a.Value))
			}
		case unix.NHA_GATEWAY:
			gw, _ = netip.AddrFromSlice(a.Value)
		case unix.NHA_BLACKHOLE:
			blackhole = true
		}
	}
	switch {
	case n.group:
		n.spec = GroupSpec(legs)
	case blackhole:
		n.spec = BlackholeSpec
	default:
		n.spec = LegSpec(oif, gw)
	}
	return n, ok
}

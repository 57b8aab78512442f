package fib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"

	"github.com/multihomed/multihomed/routing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ProbeRouteProtocol is the route protocol number (see
// /etc/iproute2/rt_protos) on every probe route and rule fib creates. It is
// unassigned there; `ip route show table all proto 77` lists ours.
const ProbeRouteProtocol = 77

// DefaultProbeRulePriority is the priority of the fwmark rules: after the
// local table (0), before main (32766) and default (32767).
const DefaultProbeRulePriority = 1000

// unreachableMetric is the metric of the catch-all unreachable route in
// every probe table: higher than any real default route, so it only matters
// when the uplink's own route is missing.
const unreachableMetric = 0xffff0000

// gatewayMetric is the metric of an uplink's default route in its table.
const gatewayMetric = 1

// ProbeTables programs probe tables and rules. Its methods are not safe for
// concurrent use.
type ProbeTables struct {
	h *netlink.Handle
	// dump is for route dumps: strict, filtered by the kernel
	// (newDumpHandle).
	dump     *netlink.Handle
	priority int
	// applied is what the last successful Set applied and read back: a Set
	// asking for the same again costs no netlink call until Invalidate.
	applied lastApplied[[]routing.ProbeTable, routing.ProbeState]
	// links caches the device lookups; forgotten with applied.
	links linkCache
}

// NewProbeTables opens a netlink handle in the named network namespace, or
// in the current one if netnsName is empty (tests and the lab use a name).
// priority 0 means DefaultProbeRulePriority.
func NewProbeTables(netnsName string, priority int) (*ProbeTables, error) {
	h, err := newHandle(netnsName)
	if err != nil {
		return nil, err
	}
	if priority == 0 {
		priority = DefaultProbeRulePriority
	}
	dump, err := newDumpHandle(netnsName)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &ProbeTables{h: h, dump: dump, priority: priority, links: linkCache{h: h}}, nil
}

// newHandle opens netlink in the named namespace ("" for the current one).
func newHandle(netnsName string) (*netlink.Handle, error) {
	if netnsName == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("fib: open netlink: %w", err)
		}
		return h, nil
	}
	ns, err := vnetns.GetFromName(netnsName)
	if err != nil {
		return nil, fmt.Errorf("fib: open namespace %s: %w", netnsName, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("fib: open netlink in %s: %w", netnsName, err)
	}
	return h, nil
}

// newDumpHandle is newHandle with NETLINK_GET_STRICT_CHK on (Linux 4.20
// and later), for route dumps only: with it the kernel itself filters a
// dump by the table and protocol asked for. Without it every dump walks
// every route of every table and the library drops the others: with a
// full table in bgp.install's table that is about 0.75 microseconds a
// route (0.19 s at 250,000 routes, about 0.9 s at 1.2M) for each dump of
// the egress defaults or of a probe table, several per controller pass.
// Rule dumps are refused under strict checking (the library's request
// header has fields the kernel then wants zero), so the other requests
// keep a handle without it. On an older kernel the option is refused and
// dumps stay unfiltered: correct, slower.
func newDumpHandle(netnsName string) (*netlink.Handle, error) {
	h, err := newHandle(netnsName)
	if err != nil {
		return nil, err
	}
	_ = h.SetStrictCheck(true)
	return h, nil
}

// Close releases the netlink handle. It removes nothing: probe tables
// outlive a daemon restart, like the routes they protect.
func (p *ProbeTables) Close() {
	p.h.Close()
	p.dump.Close()
}

// Set makes the kernel hold exactly the probe rules and routes for tables:
// it adds and replaces first, then deletes what fib owns that is no longer
// wanted, and never touches a rule or route without ProbeRouteProtocol.
// Calling it again with the same tables changes nothing. It returns the
// state read back afterwards, also on error.
//
// When tables equal those of the last Set that succeeded, and Invalidate
// was not called since, Set trusts the kernel to still hold them: it makes
// no netlink call (not even the device lookups) and returns the state
// read back then. The caller must call Invalidate when a link's carrier or
// index may have changed (the kernel drops the gateway routes of a link
// that goes down) and periodically, to repair what someone else changed.
func (p *ProbeTables) Set(ctx context.Context, tables []routing.ProbeTable) (routing.ProbeState, error) {
	if st, ok := p.applied.lookup(tables, probeTablesEqual); ok {
		return st, nil
	}
	// Whatever apply does from here on, the remembered state is stale
	// unless apply succeeds (a half-applied Set changed the kernel).
	p.applied.invalidate()
	st, err := p.apply(ctx, tables)
	if err != nil {
		p.links.forget() // a device may have gone or come back
		return st, err
	}
	p.applied.store(cloneProbeTables(tables), st)
	return st, nil
}

// Invalidate makes the next Set look the devices up again (their index
// and carrier), read the kernel and repair it, even when its tables equal
// the last ones.
func (p *ProbeTables) Invalidate() {
	p.applied.invalidate()
	p.links.forget()
}

// probeTablesEqual compares every field, so that a field added to
// routing.ProbeTable can never be ignored by the shortcut (a nil and an
// empty Gateways differ: that costs one full Set, never a wrong one).
func probeTablesEqual(a, b []routing.ProbeTable) bool { return reflect.DeepEqual(a, b) }

func cloneProbeTables(ts []routing.ProbeTable) []routing.ProbeTable {
	out := slices.Clone(ts)
	for i := range out {
		out[i].Gateways = slices.Clone(out[i].Gateways)
	}
	return out
}

// apply is Set without the shortcut.
func (p *ProbeTables) apply(ctx context.Context, tables []routing.ProbeTable) (routing.ProbeState, error) {
	wantRoutes, wantRules, err := p.desired(tables)
	if err != nil {
		st, _ := p.State()
		return st, err
	}
	var errs []error
	for _, r := range wantRoutes {
		if err := ctx.Err(); err != nil {
			return p.stateWith(err)
		}
		if err := p.h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("fib: replace %s in table %d: %w", routeString(r), r.Table, err))
		}
	}
	haveRules, err := p.ownedRules()
	if err != nil {
		return p.stateWith(errors.Join(append(errs, err)...))
	}
	for _, r := range wantRules {
		if slices.ContainsFunc(haveRules, func(h netlink.Rule) bool { return sameRule(h, *r) }) {
			continue
		}
		if err := p.h.RuleAdd(r); err != nil {
			errs = append(errs, fmt.Errorf("fib: add rule fwmark %#x lookup %d: %w", r.Mark, r.Table, err))
		}
	}
	// Deletes last: a rule pointing at a table being refilled keeps working.
	for _, h := range haveRules {
		if !slices.ContainsFunc(wantRules, func(w *netlink.Rule) bool { return sameRule(h, *w) }) {
			if err := p.h.RuleDel(&h); err != nil {
				errs = append(errs, fmt.Errorf("fib: delete rule fwmark %#x lookup %d: %w", h.Mark, h.Table, err))
			}
		}
	}
	haveRoutes, err := p.ownedRoutes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, h := range haveRoutes {
		if !slices.ContainsFunc(wantRoutes, func(w *netlink.Route) bool { return sameRoute(h, *w) }) {
			if err := p.h.RouteDel(&h); err != nil {
				errs = append(errs, fmt.Errorf("fib: delete %s from table %d: %w", routeString(&h), h.Table, err))
			}
		}
	}
	return p.stateWith(errors.Join(errs...))
}

func (p *ProbeTables) stateWith(err error) (routing.ProbeState, error) {
	st, serr := p.State()
	return st, errors.Join(err, serr)
}

// desired builds the netlink rules and routes for tables.
func (p *ProbeTables) desired(tables []routing.ProbeTable) ([]*netlink.Route, []*netlink.Rule, error) {
	var routes []*netlink.Route
	var rules []*netlink.Rule
	marks, tabs := map[uint32]bool{}, map[int]bool{}
	for _, t := range tables {
		if t.Mark == 0 || t.Table <= 0 || (t.Table >= 253 && t.Table <= 255) {
			return nil, nil, fmt.Errorf("fib: probe table of %s: mark %#x / table %d unusable; use a nonzero mark and a table other than 0 and 253-255", t.Uplink, t.Mark, t.Table)
		}
		if marks[t.Mark] || tabs[t.Table] {
			return nil, nil, fmt.Errorf("fib: probe table of %s: mark %#x or table %d used twice; give each uplink its own", t.Uplink, t.Mark, t.Table)
		}
		marks[t.Mark], tabs[t.Table] = true, true
		link, err := p.links.link(t.Device)
		if err != nil {
			return nil, nil, fmt.Errorf("fib: probe table of %s: device %q: %w", t.Uplink, t.Device, err)
		}
		for _, v6 := range []bool{false, true} {
			family, dst := unix.AF_INET, netip.MustParsePrefix("0.0.0.0/0")
			if v6 {
				family, dst = unix.AF_INET6, netip.MustParsePrefix("::/0")
			}
			routes = append(routes, &netlink.Route{
				Family: family, Table: t.Table, Dst: ipNet(dst), Type: unix.RTN_UNREACHABLE,
				Priority: unreachableMetric, Protocol: ProbeRouteProtocol,
			})
			mask := uint32(0xffffffff)
			rules = append(rules, &netlink.Rule{
				Family: family, Table: t.Table, Mark: t.Mark, Mask: &mask, Priority: p.priority,
				Protocol: ProbeRouteProtocol, Goto: -1, Flow: -1, SuppressIfgroup: -1, SuppressPrefixlen: -1,
			})
		}
		seen := map[bool]bool{}
		gateways := t.Gateways
		if !hasCarrier(link.Attrs()) {
			// The kernel dropped the uplink's routes with its carrier and
			// refuses a gateway it cannot reach ("no route to host"): leave
			// only the unreachable defaults, so this uplink's probes keep
			// failing fast, and add the gateways back on the pass that the
			// carrier's return triggers.
			gateways = nil
		}
		for _, gw := range gateways {
			gw = gw.Unmap()
			if seen[gw.Is4()] {
				return nil, nil, fmt.Errorf("fib: probe table of %s: two gateways of one family; give one per family", t.Uplink)
			}
			seen[gw.Is4()] = true
			family, dst := unix.AF_INET6, netip.MustParsePrefix("::/0")
			if gw.Is4() {
				family, dst = unix.AF_INET, netip.MustParsePrefix("0.0.0.0/0")
			}
			routes = append(routes, &netlink.Route{
				Family: family, Table: t.Table, Dst: ipNet(dst), Gw: gw.AsSlice(), LinkIndex: link.Attrs().Index,
				Type: unix.RTN_UNICAST, Protocol: ProbeRouteProtocol, Scope: netlink.SCOPE_UNIVERSE,
				// Explicit: IPv6 would turn 0 into 1024 and the read-back
				// would no longer compare equal.
				Priority: gatewayMetric,
			})
		}
	}
	return routes, rules, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (p *ProbeTables) ownedRules() ([]netlink.Rule, error) {
	var out []netlink.Rule
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := p.h.RuleList(fam)
		if err != nil {
			return nil, fmt.Errorf("fib: list rules: %w", err)
		}
		for _, r := range rules {
			if r.Protocol == ProbeRouteProtocol {
				r.Family = fam
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func (p *ProbeTables) ownedRoutes() ([]netlink.Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: ProbeRouteProtocol}
	routes, err := p.dump.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("fib: list routes: %w", err)
	}
	return routes, nil
}

func sameRule(a, b netlink.Rule) bool {
	return a.Family == b.Family && a.Table == b.Table && a.Mark == b.Mark && a.Priority == b.Priority
}

func isDefault(n *net.IPNet) bool {
	if n == nil {
		return true
	}
	ones, _ := n.Mask.Size()
	return ones == 0
}

func sameRoute(a, b netlink.Route) bool {
	if a.Family != b.Family || a.Table != b.Table || a.Type != b.Type || !isDefault(a.Dst) || !isDefault(b.Dst) || a.Priority != b.Priority {
		return false
	}
	// The kernel attaches IPv6 unreachable routes to lo: the device only
	// matters for forwarding routes.
	return a.Type == unix.RTN_UNREACHABLE || (a.Gw.Equal(b.Gw) && a.LinkIndex == b.LinkIndex)
}

func routeString(r *netlink.Route) string {
	if r.Type == unix.RTN_UNREACHABLE {
		return "unreachable default"
	}
	return fmt.Sprintf("default via %v", r.Gw)
}

// State reads back the probe rules and routes fib owns.
func (p *ProbeTables) State() (routing.ProbeState, error) {
	var st routing.ProbeState
	rules, err := p.ownedRules()
	if err != nil {
		return st, err
	}
	for _, r := range rules {
		st.Rules = append(st.Rules, routing.ProbeRule{IPv6: r.Family == unix.AF_INET6, Mark: r.Mark, Table: r.Table, Priority: r.Priority})
	}
	routes, err := p.ownedRoutes()
	if err != nil {
		return st, err
	}
	for _, r := range routes {
		pr := routing.ProbeRoute{Table: r.Table, Unreachable: r.Type == unix.RTN_UNREACHABLE, Metric: r.Priority}
		pr.Dst = netip.MustParsePrefix("0.0.0.0/0")
		if r.Family == unix.AF_INET6 {
			pr.Dst = netip.MustParsePrefix("::/0")
		}
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			pr.Gateway = gw.Unmap()
		}
		if r.LinkIndex > 0 {
			pr.Device, _ = p.links.name(r.LinkIndex)
		}
		st.Routes = append(st.Routes, pr)
	}
	slices.SortFunc(st.Rules, func(a, b routing.ProbeRule) int { return a.Table - b.Table })
	slices.SortFunc(st.Routes, func(a, b routing.ProbeRoute) int { return a.Table - b.Table })
	return st, nil
}

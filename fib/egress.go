package fib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"

	"github.com/multihomed/multihomed/routing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Egress programs the site's default routes: in one table, tagged with one
// route protocol number, which is how it recognises its own routes. It
// never touches a route with another protocol number or in another table.
// Its methods are not safe for concurrent use.
type Egress struct {
	h *netlink.Handle
	// dump is for route dumps: strict, filtered by the kernel
	// (newDumpHandle).
	dump     *netlink.Handle
	table    int
	protocol int
	// retired are earlier (table, protocol) pairs whose routes the next
	// Set removes, after the new ones are in place (Retarget).
	retired []egressTarget
	// applied is what the last successful Set applied and read back: a
	// Set asking for the same again, and State, cost no netlink call until
	// Invalidate.
	applied lastApplied[egressWant, []routing.EgressRoute]
	// links caches the device lookups; forgotten on Invalidate and errors.
	links linkCache
}

// egressWant is what a Set was asked for.
type egressWant struct {
	paths []routing.EgressPath
	ecmp  bool
}

// egressWantEqual compares every field, so that a field added to
// routing.EgressPath can never be ignored by the shortcut.
func egressWantEqual(a, b egressWant) bool { return reflect.DeepEqual(a, b) }

type egressTarget struct{ table, protocol int }

// NewEgress opens netlink in the named namespace ("" for the current one)
// for routes in table with the given protocol number.
func NewEgress(netnsName string, table, protocol int) (*Egress, error) {
	if err := checkEgressTarget(table, protocol); err != nil {
		return nil, err
	}
	h, err := newHandle(netnsName)
	if err != nil {
		return nil, err
	}
	dump, err := newDumpHandle(netnsName)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &Egress{h: h, dump: dump, table: table, protocol: protocol, links: linkCache{h: h}}, nil
}

func checkEgressTarget(table, protocol int) error {
	if protocol == ProbeRouteProtocol {
		return fmt.Errorf("fib: egress route protocol %d is the probe tables' own; choose another", protocol)
	}
	if protocol < 5 || protocol > 255 || table <= 0 {
		return fmt.Errorf("fib: egress table %d / protocol %d unusable", table, protocol)
	}
	return nil
}

// Retarget moves the egress routes to table and protocol from the next Set
// on: that Set installs them there first, then removes the routes the
// previous table and protocol held (a move within one table replaces each
// route in place, so forwarding never lacks a default). Until a Set has
// removed them, the old routes stay retired and every Set tries again.
func (e *Egress) Retarget(table, protocol int) error {
	if err := checkEgressTarget(table, protocol); err != nil {
		return err
	}
	old := egressTarget{e.table, e.protocol}
	e.table, e.protocol = table, protocol
	e.applied.invalidate()
	// Back to a target retired before: it is current again.
	e.retired = slices.DeleteFunc(e.retired, func(t egressTarget) bool { return t == egressTarget{table, protocol} })
	return e.Retire(old.table, old.protocol)
}

// Retire marks the default routes a previous run left in table with
// protocol (an earlier egress.table or egress.protocol) as ours to remove:
// the next Set that installs every route removes them, and until then a
// route there with one of ours' keys counts as ours, not as foreign (so a
// protocol change within one table replaces them in place). Retiring the
// current target does nothing.
func (e *Egress) Retire(table, protocol int) error {
	if err := checkEgressTarget(table, protocol); err != nil {
		return err
	}
	t := egressTarget{table, protocol}
	if t == (egressTarget{e.table, e.protocol}) || slices.Contains(e.retired, t) {
		return nil
	}
	e.retired = append(e.retired, t)
	e.applied.invalidate()
	return nil
}

// Invalidate makes the next Set look the devices up again, read the table
// and repair it, and State read the kernel, even when Set is asked for the
// same routes as last time.
func (e *Egress) Invalidate() {
	e.applied.invalidate()
	e.links.forget()
}

// Close releases the netlink handle; the routes stay (a restarting daemon
// adopts them, and forwarding goes on meanwhile).
func (e *Egress) Close() {
	e.h.Close()
	e.dump.Close()
}

// Set makes the egress table hold exactly the default routes for paths:
// in failover mode one route per path and family, with the path's metric;
// in ECMP mode one multipath route per family over every path, weighted.
// It adds and replaces before it deletes, adopts routes a previous run
// left, removes stale ones, and is idempotent. It returns the state read
// back afterwards, also on error.
//
// When paths and ecmp equal those of the last Set that succeeded, and
// neither Invalidate nor Retarget nor Retire was called since, Set trusts
// the kernel to still hold them: it makes no netlink call (not even the
// device lookups) and returns the routes read back then. The caller must
// call Invalidate when a link's carrier or index may have changed and
// periodically, to repair what someone else changed.
func (e *Egress) Set(ctx context.Context, paths []routing.EgressPath, ecmp bool) ([]routing.EgressRoute, error) {
	asked := egressWant{paths, ecmp}
	if st, ok := e.applied.lookup(asked, egressWantEqual); ok {
		return st, nil
	}
	// Stale unless apply succeeds (a half-applied Set changed the kernel).
	e.applied.invalidate()
	st, err := e.apply(ctx, paths, ecmp)
	if err != nil {
		e.links.forget() // a device may have gone or come back
	}
	if err == nil && len(e.retired) == 0 {
		asked.paths = slices.Clone(paths)
		for i := range asked.paths {
			asked.paths[i].Gateways = slices.Clone(asked.paths[i].Gateways)
		}
		e.applied.store(asked, st)
	}
	return st, err
}

// apply is Set without the shortcut.
func (e *Egress) apply(ctx context.Context, paths []routing.EgressPath, ecmp bool) ([]routing.EgressRoute, error) {
	want, err := e.desired(paths, ecmp)
	if err != nil {
		st, _ := e.readState()
		return st, err
	}
	have, err := e.owned()
	if err != nil {
		return nil, err
	}
	// Every route of our table, dumped only when a new route of ours
	// finds its key taken: the table may hold a full table of another
	// daemon's routes, which a dump on every failover would walk.
	var inTable []netlink.Route
	var errs, blocked []error
	for _, w := range want {
		if err := ctx.Err(); err != nil {
			return e.stateWith(err)
		}
		if slices.ContainsFunc(have, func(h netlink.Route) bool { return sameEgress(h, *w) }) {
			continue
		}
		// One of ours with the same key (family, metric) is replaced in
		// place; otherwise the route is added only if nothing has its
		// key: a replace would overwrite a route that is not ours.
		if !slices.ContainsFunc(have, func(h netlink.Route) bool { return sameKey(h, *w) }) {
			err := e.h.RouteAdd(w)
			if err == nil {
				continue
			}
			if !errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("fib: add %s: %w", e.describe(*w), err))
				continue
			}
			if inTable == nil {
				if inTable, err = e.list(&netlink.Route{Table: e.table}, netlink.RT_FILTER_TABLE); err != nil {
					return e.stateWith(errors.Join(append(errs, err)...))
				}
			}
			if f := e.foreignWithKeyOf(*w, inTable); f != nil {
				blocked = append(blocked, fmt.Errorf("fib: table %d already has a default route with metric %d that is not ours (protocol %d, %s); it stays, and ours is not installed: change egress.metric or remove that route",
					e.table, w.Priority, f.Protocol, e.describe(*f)))
				continue
			}
		}
		if err := e.h.RouteReplace(w); err != nil {
			errs = append(errs, fmt.Errorf("fib: replace %s: %w", e.describe(*w), err))
		}
	}
	have, err = e.owned()
	if err != nil {
		return e.stateWith(errors.Join(append(errs, err)...))
	}
	for _, h := range have {
		if slices.ContainsFunc(want, func(w *netlink.Route) bool { return sameEgress(h, *w) }) {
			continue
		}
		if err := e.h.RouteDel(&h); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("fib: delete %s: %w", e.describe(h), err))
		}
	}
	if len(errs) == 0 {
		// The new routes are in place (or a route that is not ours holds
		// their place, which forwards just as well): the retired ones can
		// go.
		e.retired = slices.DeleteFunc(e.retired, func(t egressTarget) bool {
			if err := e.removeAll(t); err != nil {
				errs = append(errs, err)
				return false
			}
			return true
		})
	}
	return e.stateWith(errors.Join(append(errs, blocked...)...))
}

// removeAll deletes every default route of a retired table and protocol.
func (e *Egress) removeAll(t egressTarget) error {
	routes, err := e.ownedBy(t)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range routes {
		if !isDefault(r.Dst) {
			continue
		}
		if err := e.h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("fib: delete %s from retired table %d protocol %d: %w", e.describe(r), t.table, t.protocol, err))
		}
	}
	return errors.Join(errs...)
}

func (e *Egress) stateWith(err error) ([]routing.EgressRoute, error) {
	st, serr := e.readState()
	return st, errors.Join(err, serr)
}

func (e *Egress) desired(paths []routing.EgressPath, ecmp bool) ([]*netlink.Route, error) {
	type hop struct {
		gw     netip.Addr
		link   int
		weight int
		metric int
	}
	byFamily := map[bool][]hop{} // key: IPv4
	for _, p := range paths {
		link, err := e.links.link(p.Device)
		if err != nil {
			return nil, fmt.Errorf("fib: egress via %s: device %q: %w", p.Uplink, p.Device, err)
		}
		seen := map[bool]bool{}
		for _, gw := range p.Gateways {
			gw = gw.Unmap()
			if seen[gw.Is4()] {
				return nil, fmt.Errorf("fib: egress via %s: two gateways of one family", p.Uplink)
			}
			seen[gw.Is4()] = true
			w := p.Weight
			if w < 1 {
				w = 1
			}
			byFamily[gw.Is4()] = append(byFamily[gw.Is4()], hop{gw, link.Attrs().Index, w, p.Metric})
		}
	}
	var out []*netlink.Route
	for _, v4 := range []bool{false, true} {
		hops := byFamily[v4]
		if len(hops) == 0 {
			continue
		}
		family, dst := unix.AF_INET6, netip.MustParsePrefix("::/0")
		if v4 {
			family, dst = unix.AF_INET, netip.MustParsePrefix("0.0.0.0/0")
		}
		base := netlink.Route{Family: family, Table: e.table, Dst: ipNet(dst), Type: unix.RTN_UNICAST,
			Protocol: netlink.RouteProtocol(e.protocol), Scope: netlink.SCOPE_UNIVERSE}
		if ecmp && len(hops) > 1 {
			r := base
			r.Priority = hops[0].metric
			for _, h := range hops {
				r.Priority = min(r.Priority, h.metric)
				r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{LinkIndex: h.link, Gw: h.gw.AsSlice(), Hops: h.weight - 1})
			}
			out = append(out, &r)
			continue
		}
		metrics := map[int]bool{}
		for _, h := range hops {
			if metrics[h.metric] {
				return nil, fmt.Errorf("fib: two egress paths with metric %d; give each uplink its own", h.metric)
			}
			metrics[h.metric] = true
			r := base
			r.Priority, r.Gw, r.LinkIndex = h.metric, h.gw.AsSlice(), h.link
			out = append(out, &r)
		}
	}
	return out, nil
}

// owned lists the routes in our table with our protocol, retrying a dump
// the kernel interrupted (the table changed under it).
func (e *Egress) owned() ([]netlink.Route, error) {
	return e.ownedBy(egressTarget{e.table, e.protocol})
}

// ownedBy lists the routes of table t.table with protocol t.protocol.
func (e *Egress) ownedBy(t egressTarget) ([]netlink.Route, error) {
	return e.list(&netlink.Route{Table: t.table, Protocol: netlink.RouteProtocol(t.protocol)}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
}

// foreignWithKeyOf returns the default route of routes (our table's) that
// has w's family and metric but is not ours: neither our protocol nor a
// retired one of ours in this table.
func (e *Egress) foreignWithKeyOf(w netlink.Route, routes []netlink.Route) *netlink.Route {
	for i, r := range routes {
		if r.Family != w.Family || r.Priority != w.Priority || !isDefault(r.Dst) || r.Table != e.table {
			continue
		}
		ours := int(r.Protocol) == e.protocol || slices.ContainsFunc(e.retired, func(t egressTarget) bool {
			return t.table == e.table && t.protocol == int(r.Protocol)
		})
		if !ours {
			return &routes[i]
		}
	}
	return nil
}

// list dumps the routes that match filter on mask.
func (e *Egress) list(filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	routes, err := listRoutes(e.dump, filter, mask)
	if err != nil {
		return nil, fmt.Errorf("fib: list egress routes: %w", err)
	}
	return routes, nil
}

// listRoutes dumps the routes filter and mask select, retrying a dump the
// kernel interrupted (the table changed under it).
func listRoutes(h *netlink.Handle, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var routes []netlink.Route
		routes, err = h.RouteListFiltered(netlink.FAMILY_ALL, filter, mask)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return routes, nil
	}
	return nil, fmt.Errorf("interrupted 5 times: %w", err)
}

// sameKey reports whether two default routes have the key under which the
// kernel keeps one route per table: family and metric.
func sameKey(a, b netlink.Route) bool {
	return a.Family == b.Family && a.Priority == b.Priority && isDefault(a.Dst) && isDefault(b.Dst)
}

// sameEgress compares what matters of two default routes.
func sameEgress(a, b netlink.Route) bool {
	if a.Family != b.Family || a.Priority != b.Priority || !isDefault(a.Dst) || !isDefault(b.Dst) {
		return false
	}
	return slices.Equal(hopKeys(a), hopKeys(b))
}

func hopKeys(r netlink.Route) []string {
	if len(r.MultiPath) == 0 {
		return []string{fmt.Sprintf("%v@%d/1", r.Gw, r.LinkIndex)}
	}
	var out []string
	for _, h := range r.MultiPath {
		out = append(out, fmt.Sprintf("%v@%d/%d", h.Gw, h.LinkIndex, h.Hops+1))
	}
	sort.Strings(out)
	return out
}

func (e *Egress) describe(r netlink.Route) string {
	st := e.toState(r)
	return st.String() + fmt.Sprintf(" table %d", e.table)
}

func (e *Egress) toState(r netlink.Route) routing.EgressRoute {
	dst := netip.MustParsePrefix("::/0")
	if r.Family == unix.AF_INET {
		dst = netip.MustParsePrefix("0.0.0.0/0")
	}
	out := routing.EgressRoute{Dst: dst, Metric: r.Priority}
	name := func(idx int) string {
		if n, ok := e.links.name(idx); ok {
			return n
		}
		return fmt.Sprint(idx)
	}
	addr := func(ip net.IP) netip.Addr { a, _ := netip.AddrFromSlice(ip); return a.Unmap() }
	if len(r.MultiPath) == 0 {
		out.NextHops = []routing.EgressNextHop{{Gateway: addr(r.Gw), Device: name(r.LinkIndex), Weight: 1}}
	}
	for _, h := range r.MultiPath {
		out.NextHops = append(out.NextHops, routing.EgressNextHop{Gateway: addr(h.Gw), Device: name(h.LinkIndex), Weight: h.Hops + 1})
	}
	return out
}

// State reads back the default routes fib owns in the egress table, IPv6
// first, then by metric. While Set's shortcut holds (see Set) it returns
// what the last Set read back, without a netlink call.
func (e *Egress) State() ([]routing.EgressRoute, error) {
	if st, ok := e.applied.last(); ok {
		return st, nil
	}
	return e.readState()
}

// readState is State without the shortcut.
func (e *Egress) readState() ([]routing.EgressRoute, error) {
	routes, err := e.owned()
	if err != nil {
		return nil, err
	}
	var out []routing.EgressRoute
	for _, r := range routes {
		out = append(out, e.toState(r))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Dst.Addr().Is4() != out[j].Dst.Addr().Is4() {
			return out[j].Dst.Addr().Is4()
		}
		return out[i].Metric < out[j].Metric
	})
	return out, nil
}

// UnruledFamilies returns the address families ("IPv6", "IPv4") for which
// no policy routing rule in the named namespace ("" for the current one)
// looks up table: egress defaults there are then never used. The main and
// default tables have the kernel's own rules and always pass.
func UnruledFamilies(netnsName string, table int) ([]string, error) {
	if table == unix.RT_TABLE_MAIN || table == unix.RT_TABLE_DEFAULT {
		return nil, nil
	}
	h, err := newHandle(netnsName)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var out []string
	for _, f := range []struct {
		fam  int
		name string
	}{{unix.AF_INET6, "IPv6"}, {unix.AF_INET, "IPv4"}} {
		rules, err := h.RuleList(f.fam)
		if err != nil {
			return nil, fmt.Errorf("fib: list rules: %w", err)
		}
		if !slices.ContainsFunc(rules, func(r netlink.Rule) bool { return r.Table == table }) {
			out = append(out, f.name)
		}
	}
	return out, nil
}

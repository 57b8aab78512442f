package fib

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/multihomed/multihomed/routing"
)

// InstallUplink is one uplink as the Installer sees it: its device and its
// next hop per family.
type InstallUplink struct {
	Name     string
	Device   string
	Gateways []netip.Addr // at most one per family
}

// Installer keeps bgp.install's table equal to the best BGP routes from the
// uplinks, each route pointing at its uplink's nexthop group. Route hands
// changes over without blocking; Run applies them in batches. SetEgress
// points every group at the uplinks that carry the site's egress: an
// uplink that stopped carrying it has its group replaced by the legs the
// site's default egress uses (the best egress tier; one change per
// family, whatever the number of routes), or by a blackhole when none is
// left. Route and SetEgress are safe for concurrent use; Run runs once.
type Installer struct {
	// Two sockets, so that a failover never waits behind a batch of a
	// million routes: routes is Run's, nexthops SetEgress's (under nhMu).
	routes   *Routes
	nhMu     sync.Mutex
	nexthops *Routes
	// applied is, by nexthop id, the spec (NexthopSpecs) SetEgress last
	// set: an unchanged nexthop is not sent again, since every replace
	// costs the kernel work for each route that uses it (and with
	// nexthop_compat_mode 1 a notification per route). verify makes the
	// next SetEgress read the kernel's nexthops back first (Invalidate).
	// Both under nhMu.
	applied map[uint32]string
	verify  bool
	// ifindex is each uplink's device index as SetEgress last looked it
	// up (0: not yet), forgotten with applied on a read-back: a device
	// created again gets a new index, and its link event invalidates.
	// Under nhMu.
	ifindex []int
	log     *slog.Logger
	uplinks []InstallUplink

	// onLost, if set, is called (on its own goroutine) when a read-back
	// finds that the kernel removed a group of ours, and with it every
	// route that used it (SetOnLost). Under nhMu.
	onLost func()

	// mu guards pending, keep and groupsReady.
	mu      sync.Mutex
	pending map[netip.Prefix]string // prefix -> uplink; "" removes it
	// keep is set by Resync: once pending is applied, the table's routes
	// that are not in keep are removed. Route adds what it installs.
	keep map[netip.Prefix]struct{}
	// groupsReady is set once SetEgress created the groups: routes wait
	// for it, since a route cannot point at a nexthop that does not exist.
	groupsReady bool
	wake        chan struct{}
}

// Nexthop ids: the installer owns the ids from installIDBase on, four per
// uplink (leg and group, per family), in the order of the uplinks given.
const installIDBase = 0x6d680000 // "mh"

// blackholeID is the leg of a group whose uplinks are all gone.
const blackholeID = installIDBase - 1

func legID(i int, v4 bool) uint32   { return installIDBase + uint32(4*i) + b2u(v4) }
func groupID(i int, v4 bool) uint32 { return installIDBase + uint32(4*i) + 2 + b2u(v4) }

// isGroup reports whether id is one of the installer's groups.
func (in *Installer) isGroup(id uint32) bool {
	for i := range in.uplinks {
		if id == groupID(i, false) || id == groupID(i, true) {
			return true
		}
	}
	return false
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// NewInstaller opens netlink in the named namespace ("" for the current
// one) for routes in table with protocol, and removes what an earlier run
// left there (Routes.Purge): its groups may point at an uplink that has
// died since, or at another uplink's next hop under a changed
// configuration, and routes the ISPs withdrew meanwhile would stay
// forever. Until the sessions bring the table back, the site's traffic
// follows the egress default routes.
func NewInstaller(netnsName string, table, protocol int, uplinks []InstallUplink, log *slog.Logger) (*Installer, error) {
	routes, err := NewRoutes(netnsName, table, protocol)
	if err != nil {
		return nil, err
	}
	nexthops, err := NewRoutes(netnsName, table, protocol)
	if err != nil {
		routes.Close()
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	nhs, rts, err := routes.Purge()
	if err != nil {
		routes.Close()
		nexthops.Close()
		return nil, fmt.Errorf("fib: remove what an earlier run installed in table %d (protocol %d): %w", table, protocol, err)
	}
	if nhs+rts > 0 {
		log.Info("fib: removed an earlier run's BGP routes before installing", "table", table, "protocol", protocol, "nexthops", nhs, "routes_without_nexthop", rts)
	}
	return &Installer{routes: routes, nexthops: nexthops, log: log, uplinks: slices.Clone(uplinks), applied: map[uint32]string{}, ifindex: make([]int, len(uplinks)),
		pending: map[netip.Prefix]string{}, wake: make(chan struct{}, 1)}, nil
}

// Close releases netlink; the routes stay (like the egress defaults, they
// keep forwarding while the daemon is stopped; the next NewInstaller
// removes them).
func (in *Installer) Close() {
	in.routes.Close()
	in.nexthops.Close()
}

// Route records that the best path to p now comes from uplink ("" for
// none). It never blocks: later changes to one prefix replace earlier
// ones not yet applied.
func (in *Installer) Route(changes []RouteChange) {
	in.mu.Lock()
	for _, c := range changes {
		in.pending[c.Prefix] = c.Uplink
		if in.keep != nil && c.Uplink != "" {
			in.keep[c.Prefix] = struct{}{}
		}
	}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// Resync replaces what the installer made of earlier changes by all, the
// whole table of best paths (as the speaker's snapshot gives it after
// bgp.Speaker.ReplayBest): every route in it is installed again, and then
// every route of the table that is neither in it nor given by Route since
// is removed. It never blocks.
func (in *Installer) Resync(all []RouteChange) {
	keep := make(map[netip.Prefix]struct{}, len(all))
	in.mu.Lock()
	for _, c := range all {
		in.pending[c.Prefix] = c.Uplink
		if c.Uplink != "" {
			keep[c.Prefix] = struct{}{}
		}
	}
	in.keep = keep
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// SetOnLost sets what to call when a read-back of the nexthops finds a
// group of ours gone: the kernel removed it, with every route that used
// it, because the device of its last leg lost its carrier (or someone
// deleted it). The daemon replays the best paths into Resync then.
func (in *Installer) SetOnLost(fn func()) {
	in.nhMu.Lock()
	in.onLost = fn
	in.nhMu.Unlock()
}

// RouteChange is one prefix's new uplink ("" removes the route).
type RouteChange struct {
	Prefix netip.Prefix
	Uplink string
}

// Run applies route changes until ctx ends.
func (in *Installer) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-in.wake:
		}
		if err := in.flush(); err != nil {
			in.log.Error("fib: install BGP routes", "err", err)
		}
	}
}

// flush applies what is pending, grouped by nexthop group.
func (in *Installer) flush() error {
	in.mu.Lock()
	if !in.groupsReady || len(in.pending) == 0 && in.keep == nil {
		in.mu.Unlock()
		return nil
	}
	batch, keep := in.pending, in.keep
	in.pending, in.keep = map[netip.Prefix]string{}, nil
	in.mu.Unlock()
	byGroup := map[uint32][]netip.Prefix{}
	var gone []netip.Prefix
	for p, uplink := range batch {
		i := slices.IndexFunc(in.uplinks, func(u InstallUplink) bool { return u.Name == uplink })
		if i < 0 {
			gone = append(gone, p)
			continue
		}
		id := groupID(i, p.Addr().Is4())
		byGroup[id] = append(byGroup[id], p)
	}
	var errs []error
	for id, ps := range byGroup {
		errs = append(errs, in.routes.Replace(ps, id))
	}
	errs = append(errs, in.routes.Delete(gone))
	if keep != nil {
		n, err := in.routes.Sweep(func(p netip.Prefix) bool { _, ok := keep[p]; return ok })
		errs = append(errs, err)
		if n > 0 {
			in.log.Info("fib: removed routes the best paths no longer have after a resync", "routes", n)
		}
	}
	return errors.Join(errs...)
}

// SetEgress points each uplink's groups at its own leg when it is among
// paths (the uplinks carrying egress now), else at the legs that take
// over (takeover), else at a blackhole. ecmp is egress.mode ecmp, as for
// Egress.Set. Idempotent: it sends only the nexthops that differ from what
// it last set, so a pass that changes nothing costs the kernel nothing.
// The first call also creates the legs and lets Run install routes.
func (in *Installer) SetEgress(paths []routing.EgressPath, ecmp bool) error {
	in.nhMu.Lock()
	defer in.nhMu.Unlock()
	var errs []error
	lost := false
	if in.verify {
		// Forget what the kernel no longer has as it was set (a nexthop
		// deleted or changed by hand): it is set again below.
		have, err := in.nexthops.NexthopSpecs()
		if err != nil {
			errs = append(errs, err)
			clear(in.applied)
		}
		for id, spec := range in.applied {
			if have[id] != spec {
				delete(in.applied, id)
			}
			if _, ok := have[id]; err == nil && !ok && in.isGroup(id) {
				lost = true
			}
		}
		in.verify = err != nil
		clear(in.ifindex)
	}
	set := func(id uint32, spec string, apply func() error) {
		if in.applied[id] == spec {
			return
		}
		if err := apply(); err != nil {
			delete(in.applied, id)
			errs = append(errs, err)
			return
		}
		in.applied[id] = spec
	}
	set(blackholeID, BlackholeSpec, func() error { return in.nexthops.Blackhole(blackholeID) })
	for i, u := range in.uplinks {
		ifindex := in.ifindex[i]
		if ifindex == 0 {
			var err error
			if ifindex, err = in.nexthops.LinkIndex(u.Device); err != nil {
				errs = append(errs, err)
				continue
			}
			in.ifindex[i] = ifindex
		}
		for _, gw := range u.Gateways {
			id := legID(i, gw.Is4())
			set(id, LegSpec(ifindex, gw), func() error { return in.nexthops.SetLegIndex(id, ifindex, gw) })
		}
	}
	groups := groupLegs(in.uplinks, paths, ecmp)
	for i := range in.uplinks {
		for f, v4 := range []bool{false, true} {
			id, legs := groupID(i, v4), groups[i][f]
			set(id, GroupSpec(legs), func() error { return in.nexthops.SetGroup(id, legs...) })
		}
	}
	if lost && in.onLost != nil {
		// The groups are back (or will be, on a later pass): the routes
		// the kernel removed with them come back by a replay.
		in.log.Warn("fib: the kernel removed bgp.install nexthop groups and every route using them (a link lost its carrier?); installing the routes again")
		go in.onLost()
	}
	if err := errors.Join(errs...); err != nil {
		// What failed may have failed for a nexthop the kernel removed
		// (a leg whose device lost its carrier): read them back next time.
		in.verify = true
		return fmt.Errorf("fib: install nexthops: %w", err)
	}
	in.mu.Lock()
	ready := !in.groupsReady
	in.groupsReady = true
	in.mu.Unlock()
	if ready {
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Invalidate makes the next SetEgress read the kernel's nexthops back and
// set again those that are no longer as it set them (the controller calls
// it every resync, as for the egress routes).
func (in *Installer) Invalidate() {
	in.nhMu.Lock()
	in.verify = true
	in.nhMu.Unlock()
}

// groupLegs returns the legs of each uplink's groups, by uplink index and
// family (0 IPv6, 1 IPv4): its own leg while it carries egress, else the
// takeover legs of the family, else the blackhole.
func groupLegs(uplinks []InstallUplink, paths []routing.EgressPath, ecmp bool) [][2][]uint32 {
	carrying := map[string]bool{}
	for _, p := range paths {
		carrying[p.Uplink] = true
	}
	out := make([][2][]uint32, len(uplinks))
	for f, v4 := range []bool{false, true} {
		spare := takeover(uplinks, paths, ecmp, v4)
		for i, u := range uplinks {
			switch {
			case carrying[u.Name] && hasFamily(u, v4):
				out[i][f] = []uint32{legID(i, v4)}
			case len(spare) > 0:
				out[i][f] = spare
			default:
				out[i][f] = []uint32{blackholeID}
			}
		}
	}
	return out
}

// takeover returns the legs (of family v4) that carry the routes of an
// uplink that stopped carrying egress: those the site's default egress
// uses, in the controller's order. In failover mode that is the one egress
// path with the lowest metric (the best egress tier, then configuration
// order: the default route the kernel uses); in ECMP mode every egress
// path, which the controller has already cut to the best tier. Paths that
// are not the installer's uplinks (another edge's default) take no routes.
func takeover(uplinks []InstallUplink, paths []routing.EgressPath, ecmp, v4 bool) []uint32 {
	var legs []uint32
	best := 0
	for _, p := range paths {
		i := slices.IndexFunc(uplinks, func(u InstallUplink) bool { return u.Name == p.Uplink })
		if i < 0 || !hasFamily(uplinks[i], v4) {
			continue
		}
		switch {
		case ecmp:
			legs = append(legs, legID(i, v4))
		case legs == nil || p.Metric < best:
			legs, best = []uint32{legID(i, v4)}, p.Metric
		}
	}
	return legs
}

func hasFamily(u InstallUplink, v4 bool) bool {
	return slices.ContainsFunc(u.Gateways, func(a netip.Addr) bool { return a.Is4() == v4 })
}

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
// uplink that stopped carrying it has its group replaced by the legs of
// those that do (one change per family, whatever the number of routes), or
// by a blackhole when none is left. Route and SetEgress are safe for
// concurrent use; Run runs once.
type Installer struct {
	// Two sockets, so that a failover never waits behind a batch of a
	// million routes: routes is Run's, nexthops SetEgress's (under nhMu).
	routes   *Routes
	nhMu     sync.Mutex
	nexthops *Routes
	log      *slog.Logger
	uplinks  []InstallUplink

	// mu guards pending and groupsReady.
	mu      sync.Mutex
	pending map[netip.Prefix]string // prefix -> uplink; "" removes it
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

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// NewInstaller opens netlink in the named namespace ("" for the current
// one) for routes in table with protocol.
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
	return &Installer{routes: routes, nexthops: nexthops, log: log, uplinks: slices.Clone(uplinks), pending: map[netip.Prefix]string{}, wake: make(chan struct{}, 1)}, nil
}

// Close releases netlink; the routes stay (like the egress defaults, they
// keep forwarding across a restart).
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
	}
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
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
	if !in.groupsReady || len(in.pending) == 0 {
		in.mu.Unlock()
		return nil
	}
	batch := in.pending
	in.pending = map[netip.Prefix]string{}
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
	return errors.Join(errs...)
}

// SetEgress points each uplink's groups at its own leg when it is among
// paths (the uplinks carrying egress now), else at the legs of those that
// are, else at a blackhole. Idempotent; the first call also creates the
// legs and lets Run install routes.
func (in *Installer) SetEgress(paths []routing.EgressPath) error {
	up := map[string]bool{}
	for _, p := range paths {
		up[p.Uplink] = true
	}
	in.nhMu.Lock()
	defer in.nhMu.Unlock()
	errs := []error{in.nexthops.Blackhole(blackholeID)}
	for i, u := range in.uplinks {
		for _, gw := range u.Gateways {
			errs = append(errs, in.nexthops.SetLeg(legID(i, gw.Is4()), u.Device, gw))
		}
	}
	for i, u := range in.uplinks {
		for _, v4 := range []bool{false, true} {
			var legs []uint32
			if up[u.Name] && hasFamily(u, v4) {
				legs = []uint32{legID(i, v4)}
			} else {
				for j, o := range in.uplinks {
					if up[o.Name] && hasFamily(o, v4) {
						legs = append(legs, legID(j, v4))
					}
				}
			}
			if len(legs) == 0 {
				legs = []uint32{blackholeID}
			}
			errs = append(errs, in.nexthops.SetGroup(groupID(i, v4), legs...))
		}
	}
	if err := errors.Join(errs...); err != nil {
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

func hasFamily(u InstallUplink, v4 bool) bool {
	return slices.ContainsFunc(u.Gateways, func(a netip.Addr) bool { return a.Is4() == v4 })
}

package main

import (
	"context"
	"log/slog"

	"github.com/multihomed/multihomed/bgp"
	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/fib"
	"github.com/multihomed/multihomed/routing"
)

// installer wires bgp.install: the speaker's best-path changes go to a
// fib.Installer, and every egress decision of the controller repoints the
// uplinks' nexthop groups (an uplink that stops carrying egress hands its
// routes to the uplinks of the site's default egress). bgp.install is read at start only.
type installer struct{ *fib.Installer }

// newInstaller returns nil when bgp.install is off.
func newInstaller(cfg *config.Config, log *slog.Logger) (*installer, error) {
	if cfg.BGP.Install.Table == 0 {
		return nil, nil
	}
	var ups []fib.InstallUplink
	for _, u := range cfg.Uplinks {
		ups = append(ups, fib.InstallUplink{Name: u.Name, Device: u.Interface, Gateways: u.Gateways()})
	}
	in, err := fib.NewInstaller("", cfg.BGP.Install.Table, cfg.BGP.Install.Protocol, ups, log)
	if err != nil {
		return nil, err
	}
	return &installer{in}, nil
}

// snapshotFromSpeaker is bgp.Options.OnBestSnapshot: the whole table of
// best paths after a replay replaces what the installer has.
func (in *installer) snapshotFromSpeaker(bs []bgp.BestRoute) {
	in.Resync(toChanges(bs))
}

// replayOnLoss makes a loss of nexthop groups (the kernel removed them,
// and their routes, with a link's carrier) replay the speaker's best
// paths into the installer.
func (in *installer) replayOnLoss(sp *bgp.Speaker, log *slog.Logger) {
	in.SetOnLost(func() {
		if err := sp.ReplayBest(); err != nil {
			log.Error("bgp.install: replay the best paths after the kernel removed routes", "err", err)
		}
	})
}

func toChanges(bs []bgp.BestRoute) []fib.RouteChange {
	changes := make([]fib.RouteChange, len(bs))
	for i, b := range bs {
		changes[i] = fib.RouteChange{Prefix: b.Prefix, Uplink: b.Uplink}
	}
	return changes
}

// fromSpeaker is bgp.Options.OnBest: it only hands over.
func (in *installer) fromSpeaker(bs []bgp.BestRoute) {
	in.Route(toChanges(bs))
}

// installingEgress is the controller's egress applier that also tells the
// installer which uplinks carry egress now.
type installingEgress struct {
	*fib.Egress
	in *installer
}

// Invalidate makes both the egress routes and the installer's nexthops be
// read back from the kernel and repaired on the next Set.
func (e installingEgress) Invalidate() {
	e.Egress.Invalidate()
	e.in.Invalidate()
}

// Set applies the egress routes, then points the installer's groups.
func (e installingEgress) Set(ctx context.Context, paths []routing.EgressPath, ecmp bool) ([]routing.EgressRoute, error) {
	got, err := e.Egress.Set(ctx, paths, ecmp)
	if ierr := e.in.SetEgress(paths, ecmp); ierr != nil && err == nil {
		err = ierr
	}
	return got, err
}

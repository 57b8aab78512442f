package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// twoEdge runs the two-edge demo (docs/deployment.md): both edges up, a
// flow between the internet host and the LAN host, a gray failure of
// ISP-A moving both directions to edge-2 and ISP-B, and the recovery. With
// demo false it stops after the steady state and waits for Ctrl-C.
func twoEdge(ctx context.Context, daemonPath string, verbose, demo bool) error {
	abs, err := rootDaemon(daemonPath)
	if err != nil {
		return err
	}
	l, down, err := upLab("Building the two-edge lab: edge-1 (ISP-A, FRR AS64501), edge-2 (ISP-B, BIRD AS64502), core (FRR, iBGP with both), LAN host behind the core, transit (FRR AS64510)",
		func() (*lab.TwoEdge, error) { return lab.UpTwoEdge(ctx, lab.Options{ID: netns.UniqueID()}) })
	if err != nil {
		return err
	}
	defer down()
	fmt.Println("   namespaces:", l.Describe())
	dir, err := os.MkdirTemp("", "mhlab-two-edge-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var daemons []*lab.Daemon
	defer func() {
		for _, d := range daemons {
			stopDaemon(d)
		}
	}()
	for i, e := range []struct {
		ns  *netns.NS
		cfg string
	}{{l.Edge, lab.Edge1Config(lab.ProfileFast, filepath.Join(dir, "state-1"))}, {l.Edge2, lab.Edge2Config(lab.ProfileFast, filepath.Join(dir, "state-2"))}} {
		cfg := e.cfg + fmt.Sprintf("api:\n  socket: %s\nmetrics:\n  address: \"\"\n", filepath.Join(dir, fmt.Sprintf("api-%d.sock", i+1)))
		step("Starting multihomed on edge-%d (%s) with this config:", i+1, e.ns.Name)
		fmt.Print(indent(cfg))
		d, err := startDaemon(ctx, e.ns, abs, filepath.Join(dir, fmt.Sprintf("edge-%d.yaml", i+1)), cfg, echoTo(verbose))
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
	}
	steady := func(what string) error {
		return awaitTwoEdge(ctx, l, daemons, what, lab.TransitBoth, lab.Edge1CoreAddr6.String(), "eth-a", 90*time.Second)
	}
	step("Waiting for the site via both ISPs, the core's default via edge-1, each edge out through its own ISP")
	if err := steady("steady state"); err != nil {
		return err
	}
	showTwoEdge(ctx, l)
	if !demo {
		step("Lab is up. Try: vtysh -N %s -c 'show bgp ipv6 unicast ::/0'; ip netns exec %s ip -6 route show default. Ctrl-C to stop.", l.Core.Name, l.Edge.Name)
		<-ctx.Done()
		return nil
	}
	flow, err := lab.StartFlow(l.Inet, "inet", lab.InetAddr6, l.LAN, "lan", lab.LANAddr6, time.Millisecond)
	if err != nil {
		return err
	}
	defer flow.Stop()
	time.Sleep(time.Second) // let the flow run before the fault
	step("Gray failure of ISP-A (its router drops what it forwards; BGP stays up): edge-1 has no other ISP of its own")
	mark, fault := flow.Mark(), time.Now()
	if err := l.GrayFailISPA(ctx); err != nil {
		return err
	}
	if err := awaitTwoEdge(ctx, l, daemons, "moved to edge-2", lab.TransitOnlyB, lab.Edge2CoreAddr6.String(), "eth-peer", 60*time.Second); err != nil {
		return err
	}
	fmt.Printf("   moved %s after the fault: edge-1 withdrew from ISP-A because edge-2's ISP-B is up (no fail-static),\n   stopped sending the core its default, and sends what still reaches it to edge-2\n", time.Since(fault).Round(time.Millisecond))
	time.Sleep(time.Second)
	r := flow.ReportSince(mark, 100*time.Millisecond)
	fmt.Printf("   flow: inbound (inet->lan) loss window %s, outbound (lan->inet) loss window %s\n", r[0].LossWindow, r[1].LossWindow)
	showTwoEdge(ctx, l)
	step("Healing ISP-A")
	heal := time.Now()
	if err := l.HealISPA(ctx); err != nil {
		return err
	}
	if err := steady("recovery"); err != nil {
		return err
	}
	fmt.Printf("   back %s after the repair (the controller's hold-down)\n", time.Since(heal).Round(time.Millisecond))
	showTwoEdge(ctx, l)
	step("Demo complete")
	return nil
}

// awaitTwoEdge waits until the transit holds one of transit, the core's
// best default comes from core, and edge-1 sends traffic out via egress1
// (edge-2 always via its ISP).
func awaitTwoEdge(ctx context.Context, l *lab.TwoEdge, daemons []*lab.Daemon, what string, transit []string, core, egress1 string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		tp, _ := l.TransitPaths(ctx)
		c, _ := l.CoreDefault(ctx)
		e1, e2 := l.EgressDevice(ctx), l.EgressDevice2(ctx)
		if slices.Contains(transit, tp) && strings.HasPrefix(c, core+" ") && e1 == egress1 && e2 == "eth-b" {
			return nil
		}
		for i, d := range daemons {
			select {
			case <-d.Done():
				return fmt.Errorf("multihomed on edge-%d exited; its log:\n%s", i+1, d.Log())
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not reached within %s: transit %q, core %q, edge-1 egress %s, edge-2 egress %s", what, timeout, tp, c, e1, e2)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func showTwoEdge(ctx context.Context, l *lab.TwoEdge) {
	tp, err := l.TransitPaths(ctx)
	if err != nil {
		tp = err.Error()
	}
	c, err := l.CoreDefault(ctx)
	if err != nil {
		c = err.Error()
	}
	fmt.Printf("   transit's AS paths to %s: %s\n", lab.SitePrefix6, tp)
	fmt.Printf("   core's ::/0 (best, then each edge=LOCAL_PREF): %s\n", c)
	fmt.Printf("   edge-1 egress: %s; edge-2 egress: %s\n", l.EgressDevice(ctx), l.EgressDevice2(ctx))
}

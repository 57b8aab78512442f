package controller

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/fib"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestResyncRepairsDeletedRoutes runs the loop over the real fib appliers
// in a network namespace: passes between resyncs take the appliers'
// shortcut (a route an operator deleted stays deleted), and the first pass
// a controller.resync after the last verification puts the egress route
// and the probe table's gateway route back.
func TestResyncRepairsDeletedRoutes(t *testing.T) {
	testenv.Need(t, "ip")
	ctx := context.Background()
	ns, err := netns.New(ctx, "cr"+netns.UniqueID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	run := func(args ...string) string {
		t.Helper()
		out, err := ns.Run(ctx, args...)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	for i, dev := range []string{"eth-a", "eth-b", "eth-c"} {
		n := strconv.Itoa(i + 1)
		run("ip", "link", "add", dev, "type", "veth", "peer", "name", dev+"-p")
		run("ip", "link", "set", dev+"-p", "up")
		run("ip", "link", "set", dev, "up")
		run("ip", "addr", "add", "2001:db8:"+n+"000:1::2/64", "dev", dev, "nodad")
		run("ip", "addr", "add", "198.18."+n+".2/24", "dev", dev)
	}

	cfg := loopConfig(t)
	cfg.Controller.Resync = 30 * time.Second
	eg, err := fib.NewEgress(ns.Name, cfg.Egress.Table, cfg.Egress.Protocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eg.Close)
	pt, err := fib.NewProbeTables(ns.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pt.Close)
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	now := start
	l := New(cfg, Deps{Speaker: newFakeSpeaker(t, cfg), Egress: eg, ProbeTables: pt, Health: newFakeHealth(cfg), Now: func() time.Time { return now }})
	pass := func(at time.Duration) {
		t.Helper()
		now = start.Add(at)
		l.pass(ctx)
		if e := l.Status().ApplyError; e != "" {
			t.Fatalf("pass at %v: %s", at, e)
		}
	}
	table := strconv.Itoa(cfg.Egress.Table)
	egressRoute := func() bool {
		return strings.Contains(run("ip", "-6", "route", "show", "table", table, "proto", strconv.Itoa(cfg.Egress.Protocol)), "via 2001:db8:1000:1::1 dev eth-a")
	}
	probeTable := strconv.Itoa(ProbeTablesFor(cfg)[0].Table)
	probeRoute := func() bool {
		return strings.Contains(run("ip", "-6", "route", "show", "table", probeTable), "via 2001:db8:1000:1::1 dev eth-a")
	}

	pass(0)
	if !egressRoute() || !probeRoute() {
		t.Fatalf("first pass: egress route via isp-a %v, probe route %v; want both", egressRoute(), probeRoute())
	}
	// An operator deletes both.
	run("ip", "-6", "route", "del", "default", "via", "2001:db8:1000:1::1", "dev", "eth-a", "table", table, "proto", strconv.Itoa(cfg.Egress.Protocol))
	run("ip", "-6", "route", "del", "default", "via", "2001:db8:1000:1::1", "dev", "eth-a", "table", probeTable, "proto", strconv.Itoa(fib.ProbeRouteProtocol))
	pass(time.Second)
	if egressRoute() || probeRoute() {
		t.Fatalf("a pass before the resync touched the kernel (egress route %v, probe route %v): the appliers' shortcut is not taken", egressRoute(), probeRoute())
	}
	pass(30 * time.Second)
	if !egressRoute() || !probeRoute() {
		t.Fatalf("resync pass: egress route via isp-a %v, probe route %v; want both repaired", egressRoute(), probeRoute())
	}
}

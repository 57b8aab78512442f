package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestFullTableBench runs `mhlab bench fulltable`'s steps at a tiny size
// (1,000 IPv6 and 1,000 IPv4 routes) so that the bench cannot rot: the
// feeder loads its table, and multihomed, bare GoBGP (mhlab bare-gobgp),
// BIRD and FRR each accept all of
// it, with a CPU time and a peak RSS read from /proc (multihomed's import
// phase in its metrics says when every route was in its RIB, no later
// than its accepted count); then the bench's
// kernel-install run: with ISP-B added, multihomed installs the feed
// (bgp.install) through ISP-A's nexthop groups, and ISP-A's failure moves
// every route off it without touching a route, with nexthop_compat_mode 0
// and 1, and back when it heals; ISP-A's groups deleted by hand (the
// kernel takes their routes along) are replayed. Only in CI (the figures are the bench's,
// docs/benchmarks.md "Full tables").
func TestFullTableBench(t *testing.T) {
	if !testenv.InCI() {
		t.Skip("skipped outside CI (CI=true runs it): `mhlab bench fulltable` measures full tables")
	}
	needLab(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const v6, v4 = 1000, 1000
	ft, err := lab.UpFullTable(ctx, netns.UniqueID(), v6, v4, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	// mhlab runs the bare GoBGP receiver (mhlab bare-gobgp).
	mhlab := filepath.Join(t.TempDir(), "mhlab")
	if out, err := exec.Command("go", "build", "-o", mhlab, "github.com/multihomed/multihomed/cmd/mhlab").CombinedOutput(); err != nil {
		t.Fatalf("build mhlab: %v\n%s", err, out)
	}
	starts := []func() (*lab.FullTableReceiver, error){
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableDaemon(ctx, daemonBinary, t.TempDir()) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableGoBGP(ctx, mhlab, t.TempDir()) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableBIRD(ctx) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableFRR(ctx) },
	}
	for _, start := range starts {
		r, err := start()
		if err != nil {
			t.Fatal(err)
		}
		res, err := ft.MeasureFullTable(ctx, r, 100*time.Millisecond, 40*time.Second)
		r.Stop()
		if err != nil {
			t.Fatalf("%s: %v; its log:\n%s", r.Name, err, r.Log())
		}
		if !res.Finished || res.Accepted != v6+v4 {
			t.Fatalf("%s accepted %d of %d routes in %s; its log:\n%s", r.Name, res.Accepted, v6+v4, res.Converge, r.Log())
		}
		if (r.Name == "multihomed" && res.CPU <= 0) || res.MaxRSS <= 0 {
			t.Errorf("%s: CPU %s, peak RSS %d bytes: /proc was not read", r.Name, res.CPU, res.MaxRSS)
		}
		if res.InRIB <= 0 {
			t.Errorf("%s: all accepted after %s, and the bench never saw every route in the RIB", r.Name, res.Converge)
		}
		t.Logf("%s: %s (every route in the RIB after %s), %s CPU, %d MB peak RSS", r.Name, res.Converge, res.InRIB, res.CPU, res.MaxRSS/1e6)
	}

	if err := ft.AddBackup(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := ft.StartFullTableInstallDaemon(ctx, daemonBinary, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	res, err := ft.MeasureFullTable(ctx, r, 100*time.Millisecond, 40*time.Second)
	if err != nil || !res.Finished {
		t.Fatalf("install run: accepted %d of %d (%v); its log:\n%s", res.Accepted, v6+v4, err, r.Log())
	}
	if _, err := ft.WaitInstalled(ctx, 20*time.Second); err != nil {
		t.Fatalf("%v; the daemon's log:\n%s", err, r.Log())
	}
	for _, compat := range []int{0, 1} {
		f, err := ft.MeasureInstallFailover(ctx, compat, 20*time.Second)
		if err != nil {
			t.Fatalf("nexthop_compat_mode %d: %v; the daemon's log:\n%s", compat, err, r.Log())
		}
		if f.Routes != v6+v4 || f.ViaISPA != 0 || len(f.Groups) != 2 {
			t.Errorf("nexthop_compat_mode %d: %d routes (want %d), %d through ISP-A after the move (want 0), groups %v (want one per family)",
				compat, f.Routes, v6+v4, f.ViaISPA, f.Groups)
		}
		t.Logf("nexthop_compat_mode %d: egress default off ISP-A after %s, every kernel route after %s, back %s after healing",
			compat, f.Egress, f.Moved, f.Restored)
	}
	// ISP-A's groups deleted by hand: the kernel deletes their routes, the
	// daemon's next read-back (controller.resync, 30 s) replays them.
	gl, err := ft.MeasureGroupLoss(ctx, r.Pid, 60*time.Second)
	if err != nil {
		t.Fatalf("after ISP-A's groups went: %v; the daemon's log:\n%s", err, r.Log())
	}
	t.Logf("ISP-A's groups deleted: every route back through ISP-A after %s", gl.Restored)
}

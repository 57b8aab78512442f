package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestFullTableBench runs `mhlab bench fulltable`'s steps at a tiny size
// (1,000 IPv6 and 1,000 IPv4 routes) so that the bench cannot rot: the
// feeder loads its table, and multihomed, BIRD and FRR each accept all of
// it, with a CPU time and a peak RSS read from /proc. Only in CI (the
// figures are the bench's, docs/benchmarks.md "Full tables").
func TestFullTableBench(t *testing.T) {
	if !testenv.InCI() {
		t.Skip("skipped outside CI (CI=true runs it): `mhlab bench fulltable` measures full tables")
	}
	needLab(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	const v6, v4 = 1000, 1000
	ft, err := lab.UpFullTable(ctx, netns.UniqueID(), v6, v4, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	starts := []func() (*lab.FullTableReceiver, error){
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableDaemon(ctx, daemonBinary, t.TempDir()) },
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
		t.Logf("%s: %s, %s CPU, %d MB peak RSS", r.Name, res.Converge, res.CPU, res.MaxRSS/1e6)
	}
}

package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestCompareEdgesOnce runs `mhlab bench --edge exabgp` and `--edge frr`
// once on the link cut, so the comparison cannot rot: the run must
// complete, the flow must have run before the fault, the cut must have
// cost packets inbound (ISP-A's path died), the edge must have moved both
// directions before the fault was removed, and the plots must be written.
func TestCompareEdgesOnce(t *testing.T) {
	testenv.Need(t, "exabgp", "vtysh", "bird", "birdc", "nft", "ping")
	for _, edge := range []string{"exabgp", "frr"} {
		t.Run(edge, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rs, err := compare(ctx, compareOpts{edges: []string{edge}, exabgp: []string{lab.ExaBGPTuned},
				scenarios: []string{"link cut"}, reps: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("got %d results, want 1: %+v", len(rs), rs)
			}
			r := rs[0]
			if r.Scenario != "link cut" {
				t.Errorf("scenario %q, want link cut", r.Scenario)
			}
			for dir, d := range r.Dirs {
				if d.Sent == 0 {
					t.Errorf("direction %d: no packets sent while the fault was held", dir)
				}
				if d.Unresolved {
					t.Errorf("direction %d: %s edge never moved after a link cut (%+v)", dir, edge, d)
				}
				lead := r.Timeline.Received[dir][:int(-r.Timeline.Start/r.Timeline.Bin)]
				got := 0
				for _, n := range lead {
					got += n
				}
				if got == 0 {
					t.Errorf("direction %d: nothing arrived in the second before the fault", dir)
				}
			}
			if in := r.Dirs[0]; in.Lost == 0 || in.LossWindow == 0 {
				t.Errorf("inbound lost nothing to a link cut (%+v): the fault did not take effect", in)
			}
			files, err := plotTimelines(t.TempDir(), rs)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if st, err := os.Stat(f); err != nil || st.Size() < 1000 {
					t.Errorf("plot %s: %v, %v", f, st, err)
				}
			}
			if len(files) != 2 {
				t.Errorf("plots %v, want an SVG and a PNG", files)
			}
		})
	}
}

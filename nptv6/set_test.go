package nptv6

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// TestSetTransitions applies random subsets of a pool of mappings on two
// uplinks, in random order, each twice, and checks that Set returns exactly
// the requested state and that Mappings reads it back: every transition
// between states works and Set is idempotent.
func TestSetTransitions(t *testing.T) {
	for _, b := range []backend{kernelBackend(), ebpfBackend()} {
		t.Run(b.name, func(t *testing.T) {
			requirePrivileged(t, b.tools...)
			topo := newTopology(t)
			ctx := context.Background()
			second := "ed" + topo.ID
			if _, err := topo.Edge.Run(ctx, "ip", "link", "add", second, "type", "veth", "peer", "name", "ef"+topo.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := topo.Edge.Run(ctx, "ip", "link", "set", second, "up"); err != nil {
				t.Fatal(err)
			}
			p := netip.MustParsePrefix
			pool := []Mapping{
				{Interface: topo.EdgeUpIf, Internal: p("fd7a:5e1d:9c00::/48"), External: p("2001:db8:1001::/48")},
				{Interface: topo.EdgeUpIf, Internal: p("fd7a:5e1d:9d00:4200::/56"), External: p("2001:db8:1002:4200::/56")},
				{Interface: second, Internal: p("fd7a:5e1d:9c00::/48"), External: p("2001:db8:2001::/48")},
				{Interface: second, Internal: p("fd7a:5e1d:9e00:1::/64"), External: p("2001:db8:2002:1::/64")},
			}
			dp := b.new(t, topo)
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			r := rand.New(rand.NewPCG(seed, 7))
			for i := 0; i < 12; i++ {
				var want []Mapping
				for _, j := range r.Perm(len(pool)) {
					if r.IntN(2) == 0 {
						want = append(want, pool[j])
					}
				}
				for k := 0; k < 2; k++ {
					got, err := dp.Set(ctx, want)
					if err != nil || !equalMappings(got, SortMappings(want)) {
						t.Fatalf("step %d.%d: Set(%v) = %v, %v", i, k, want, got, err)
					}
				}
				got, err := dp.Mappings(ctx)
				if err != nil || !equalMappings(got, SortMappings(want)) {
					t.Fatalf("step %d: Mappings = %v, %v; want %v", i, got, err, want)
				}
			}
			if got, err := dp.Set(ctx, nil); err != nil || len(got) != 0 {
				t.Fatalf("Set(nil) = %v, %v", got, err)
			}
		})
	}
}

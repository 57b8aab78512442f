package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestHoldExpiryAtISP: the path to the ISP goes silent (a cut the ISP's
// interface does not see), so only its hold timer notices. The ISP must
// then withdraw the site prefix, so inbound traffic fails over after the
// hold time. FRR offers the RFC 8538 N bit by default; had we offered it
// too, FRR would keep the prefix stale for restart_time (it did, before
// the speaker stopped offering it) and blackhole the site meanwhile.
func TestHoldExpiryAtISP(t *testing.T) {
	testenv.Need(t, "ip", "nft", "vtysh", "/usr/lib/frr/bgpd")
	for _, tc := range []struct {
		name     string
		frrExtra string
		nbit     bool
	}{
		{"FRR offering RFC 8538", "", true},
		{"FRR not offering RFC 8538", " no bgp graceful-restart notification\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, ours, theirs := startLabRouter(t, "frr", tc.frrExtra)
			site := netip.MustParsePrefix("198.51.100.0/24")
			cfg := labConfig(t, ours, theirs, true)
			sp := startAnnounced(t, ctx, r, cfg, site)
			if nbit := peerNBit(t, sp); nbit != tc.nbit {
				t.Fatalf("N bit %t; case needs %t", nbit, tc.nbit)
			}
			f := r.(*lab.FRR)
			ns := f.Name()
			// Silence: drop everything from us inside the router's namespace.
			for _, args := range [][]string{
				{"nft", "add", "table", "inet", "cut"},
				{"nft", "add", "chain", "inet", "cut", "in", "{ type filter hook input priority 0; }"},
				{"nft", "add", "rule", "inet", "cut", "in", "ip", "saddr", ours.String(), "drop"},
			} {
				if _, err := runIn(ctx, ns, args...); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "the router's hold timer expired", 30*time.Second, func() (bool, string) {
				s, err := r.Session(ctx, ours)
				return err == nil && !s.Established, fmt.Sprint(s, err)
			})
			// FRR flushes as it takes the session down, or keeps the prefix
			// stale for restart_time (60 s here): a short wait tells them apart.
			eventually(t, "the ISP withdrew the site prefix after its hold timer expired", 5*time.Second, func() (bool, string) {
				ok, err := holds(ctx, r, site)
				return err == nil && !ok, fmt.Sprintf("held %t, stale %t, err %v", ok, ok && isStale(ctx, t, r, site), err)
			})
		})
	}
}

func runIn(ctx context.Context, ns string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%v: %v: %s", args, err, out)
	}
	return out, nil
}

package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// labRouter is the part of lab.FRR and lab.BIRD this test reads.
type labRouter interface {
	Paths(ctx context.Context, p netip.Prefix) ([]lab.Path, error)
	Session(ctx context.Context, neighbor netip.Addr) (lab.Session, error)
	Close()
	Log() string
}

// TestStopRestartRealRouters: FRR 8.4 (with and without the RFC 8538 N
// bit) and BIRD 2 as ISPs. After our Stop they keep the site prefix while
// the session is down, and a new speaker takes over without the prefix
// ever leaving their RIB. With graceful restart off on our side they drop
// it (the control: proves the observation can fail).
func TestStopRestartRealRouters(t *testing.T) {
	testenv.Need(t, "ip", "vtysh", "/usr/lib/frr/bgpd", "bird", "birdc")
	for _, tc := range []struct {
		name     string
		router   string // frr or bird
		frrExtra string
		ourGR    bool
		nbit     bool // the router offers the RFC 8538 N bit
		keeps    bool
	}{
		{"FRR offering RFC 8538", "frr", "", true, true, true},
		{"FRR not offering RFC 8538", "frr", " no bgp graceful-restart notification\n", true, false, true},
		{"BIRD", "bird", "", true, false, true},
		{"FRR, graceful restart off", "frr", "", false, true, false},
		{"BIRD, graceful restart off", "bird", "", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r, ours, theirs := startLabRouter(t, tc.router, tc.frrExtra)
			site := netip.MustParsePrefix("198.51.100.0/24")
			cfg := labConfig(t, ours, theirs, tc.ourGR)
			sp := startAnnounced(t, ctx, r, cfg, site) // its Stop at cleanup is a no-op once stopped

			if nbit := peerNBit(t, sp); nbit != tc.nbit {
				t.Fatalf("router offers the RFC 8538 N bit: %t; this case needs %t", nbit, tc.nbit)
			}
			// From here on, watch the router's RIB for any gap.
			var mu sync.Mutex
			var gaps []string
			stopWatch := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					select {
					case <-stopWatch:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if ok, err := holds(ctx, r, site); err == nil && !ok {
						mu.Lock()
						gaps = append(gaps, time.Now().Format("15:04:05.000"))
						mu.Unlock()
					}
				}
			}()
			defer func() { close(stopWatch); <-watched }()

			sp.Stop(ctx)
			eventually(t, "the router saw the session go down", 30*time.Second, func() (bool, string) {
				s, err := r.Session(ctx, ours)
				return err == nil && !s.Established, fmt.Sprint(s, err)
			})
			if !tc.keeps {
				eventually(t, "the router dropped the prefix", 10*time.Second, func() (bool, string) {
					ok, err := holds(ctx, r, site)
					return err == nil && !ok, fmt.Sprint(err)
				})
				return
			}
			// A router that flushes does so as it takes the session down;
			// 3 s of presence after that rules it out.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				if ok, err := holds(ctx, r, site); err != nil || !ok {
					t.Fatalf("after our Stop the router no longer holds the site prefix (%v); want it kept stale", err)
				}
				time.Sleep(100 * time.Millisecond)
			}

			// The restart: a new speaker takes over.
			sp2 := New(Options{})
			must(t, sp2.Start(ctx, cfg))
			defer sp2.Stop(ctx)
			_, err := sp2.SetAnnouncements(ctx, BaseAnnouncements(cfg))
			must(t, err)
			eventually(t, "the session is back", 30*time.Second, func() (bool, string) {
				s, err := r.Session(ctx, ours)
				return err == nil && s.Established, fmt.Sprint(s, err)
			})
			eventually(t, "the router holds the prefix from the new session", 30*time.Second, func() (bool, string) {
				ok, err := holds(ctx, r, site)
				return ok && !isStale(ctx, t, r, site), fmt.Sprint(err)
			})
			mu.Lock()
			defer mu.Unlock()
			if len(gaps) > 0 {
				t.Errorf("the site prefix left the router's RIB at %v during the restart", gaps)
			}
		})
	}
}

// peerNBit reports whether the (single) peer's graceful restart capability
// carries the RFC 8538 N bit.
func peerNBit(t *testing.T, sp *Speaker) bool {
	t.Helper()
	nbit := false
	must(t, sp.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		caps, err := apiutil.UnmarshalCapabilities(p.State.RemoteCap)
		must(t, err)
		for _, c := range caps {
			if gr, ok := c.(*gobgp.CapGracefulRestart); ok {
				nbit = gr.Flags&0x04 != 0
			}
		}
	}))
	return nbit
}

// holds reports whether the router has exactly one path for p. BIRD's
// birdc fails with "Network not found" for a prefix it does not hold: that
// is an answer, not an error.
// startAnnounced starts a speaker with cfg (stopped when the test ends),
// announces the site's base announcements and waits until r holds site.
func startAnnounced(t *testing.T, ctx context.Context, r labRouter, cfg *config.Config, site netip.Prefix) *Speaker {
	t.Helper()
	sp := New(Options{})
	must(t, sp.Start(ctx, cfg))
	t.Cleanup(func() { sp.Stop(ctx) })
	_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
	must(t, err)
	eventually(t, "the router holds the site prefix", 30*time.Second, func() (bool, string) {
		ok, err := holds(ctx, r, site)
		return ok, fmt.Sprint(err)
	})
	return sp
}

func holds(ctx context.Context, r labRouter, p netip.Prefix) (bool, error) {
	ps, err := r.Paths(ctx, p)
	if err != nil {
		if strings.Contains(err.Error(), "Network not found") {
			return false, nil
		}
		return false, err
	}
	return len(ps) == 1, nil
}

// isStale reports whether the router still marks p stale.
func isStale(ctx context.Context, t *testing.T, r labRouter, p netip.Prefix) bool {
	t.Helper()
	switch r := r.(type) {
	case *lab.FRR:
		var v struct {
			Paths []struct {
				Stale bool `json:"stale"`
			} `json:"paths"`
		}
		if err := r.JSON(ctx, "show bgp ipv4 unicast "+p.String()+" json", &v); err != nil {
			return true
		}
		return len(v.Paths) != 1 || v.Paths[0].Stale
	case *lab.BIRD:
		out, err := r.Cmd(ctx, "show", "route", p.String(), "all")
		return err != nil || strings.Contains(out, "stale")
	}
	return false
}

// startLabRouter starts a router in its own namespace joined to the root
// namespace by a veth pair with a /30 from 198.18.0.0/15 (unique per
// test), and returns it with our address and its address.
func startLabRouter(t *testing.T, kind, frrExtra string) (labRouter, netip.Addr, netip.Addr) {
	t.Helper()
	ctx := context.Background()
	id := netns.UniqueID()
	n, _ := strconv.ParseUint(id, 16, 32)
	base := netip.AddrFrom4([4]byte{198, 19, byte(n >> 8), byte(n) &^ 3})
	ours, theirs := base.Next(), base.Next().Next()
	ns, err := netns.New(ctx, "mhgr"+id)
	must(t, err)
	t.Cleanup(func() { _ = ns.Close() })
	rootDev, nsDev := "grr"+id, "grn"+id
	// "netns 1": the other end goes to PID 1's namespace, the root one,
	// where this test's speaker runs. Deleting ns deletes the pair.
	_, err = ns.Run(ctx, "ip", "link", "add", nsDev, "type", "veth", "peer", "name", rootDev, "netns", "1")
	must(t, err)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", rootDev).Run() })
	for _, args := range [][]string{
		{"ip", "addr", "add", ours.String() + "/30", "dev", rootDev},
		{"ip", "link", "set", rootDev, "up"},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	must(t, ns.AddAddr(ctx, nsDev, netip.PrefixFrom(theirs, 30)))
	_, err = ns.Run(ctx, "ip", "link", "set", nsDev, "up")
	must(t, err)

	var r labRouter
	switch kind {
	case "frr":
		f, err := lab.StartFRR(ctx, ns, fmt.Sprintf(`router bgp 64501
 bgp router-id %[1]s
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 bgp graceful-restart
%[3]s timers bgp 3 9
 neighbor %[2]s remote-as 64500
 neighbor %[2]s timers connect 2
 address-family ipv4 unicast
  neighbor %[2]s activate
 exit-address-family
`, theirs, ours, frrExtra))
		must(t, err)
		r = f
	case "bird":
		b, err := lab.StartBIRD(ctx, ns, fmt.Sprintf(`router id %[1]s;
protocol device {}
protocol bgp edge {
  local %[1]s as 64501;
  neighbor %[2]s as 64500;
  hold time 9; connect retry time 2; error wait time 1, 5;
  graceful restart on;
  ipv4 { import all; export none; };
}
`, theirs, ours), map[netip.Addr]string{ours: "edge"})
		must(t, err)
		r = b
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", kind, r.Log())
		}
		r.Close()
	})
	return r, ours, theirs
}

func labConfig(t *testing.T, ours, theirs netip.Addr, gr bool) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test", []byte(fmt.Sprintf(`
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: [198.51.100.0/24]}
bgp: {graceful_restart: %t, restart_time: 60s}
uplinks:
  - name: isp-a
    interface: lo
    bgp: {peer_asn: 64501, neighbor: %s, local_address: %s, hold_time: 9s, connect_retry: 1s}
`, gr, theirs, ours)), nil)
	must(t, err)
	return cfg
}

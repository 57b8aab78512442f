package bgp

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/config"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// arrivals records, in order, what the test peer received from us: one
// "prefix" per announced path and "eor" for End-of-RIB.
type arrivals struct {
	mu  sync.Mutex
	got []string
}

func (a *arrivals) watch(t *testing.T, p *testPeer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	must(t, p.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{
		OnPathUpdate: func(paths []*apiutil.Path, _ time.Time) {
			a.mu.Lock()
			defer a.mu.Unlock()
			for _, path := range paths {
				if path.Withdrawal {
					a.got = append(a.got, "withdraw "+path.Nlri.String())
				} else {
					a.got = append(a.got, path.Nlri.String())
				}
			}
		},
		OnPathEor: func(*apiutil.Path, time.Time) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.got = append(a.got, "eor")
		},
	}, server.WatchUpdate(false, "", ""), server.WatchEor(false)))
}

func (a *arrivals) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

func ourPeers(t *testing.T, sp *Speaker) int {
	t.Helper()
	n := 0
	must(t, sp.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(*api.Peer) { n++ }))
	return n
}

// startFirstAnnounce starts a speaker with graceful restart and one uplink,
// isp-a, whose test peer records what arrives; the speaker waits up to
// wait for its first announcements and stops when the test ends.
func startFirstAnnounce(t *testing.T, wait time.Duration) (*Speaker, *testPeer, *arrivals, *config.Config) {
	t.Helper()
	port := freePort(t)
	peer := startTestPeer(t, "127.0.0.2", port, 64501, nil, withGracefulRestart(false))
	arr := new(arrivals)
	arr.watch(t, peer)
	cfg := loopbackConfig(t)
	cfg.BGP.GracefulRestart = true
	cfg.Uplinks = cfg.Uplinks[:1]
	sp := New(Options{PeerPort: uint32(port), FirstAnnounceWait: wait})
	ctx := context.Background()
	must(t, sp.Start(ctx, cfg))
	t.Cleanup(func() { sp.Stop(ctx) })
	return sp, peer, arr, cfg
}

// TestNoEndOfRIBBeforeFirstAnnouncements: Start opens no session; the first
// SetAnnouncements does, and the ISP receives the site prefix before our
// End-of-RIB (an ISP that kept our routes stale flushes them at End-of-RIB).
func TestNoEndOfRIBBeforeFirstAnnouncements(t *testing.T) {
	sp, _, arr, cfg := startFirstAnnounce(t, MaxFirstAnnounceWait)
	ctx := context.Background()

	if n := ourPeers(t, sp); n != 0 {
		t.Fatalf("%d peers configured in GoBGP before the first SetAnnouncements; want none", n)
	}
	if ss := sp.Sessions(); len(ss) != 1 || ss[0].State != "idle" {
		t.Fatalf("Sessions() = %v before the first SetAnnouncements; want isp-a idle", ss)
	}
	_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
	must(t, err)
	want := []string{"198.51.100.0/24", "eor"}
	eventually(t, "the ISP got the site prefix, then End-of-RIB", 20*time.Second, func() (bool, string) {
		got := arr.list()
		return slices.Equal(got, want), fmt.Sprint(got)
	})
}

// TestFirstAnnounceWaitBounds: a controller that never announces does not
// keep the sessions closed for longer than FirstAnnounceWait.
func TestFirstAnnounceWaitBounds(t *testing.T) {
	_, peer, arr, _ := startFirstAnnounce(t, 200*time.Millisecond)
	eventually(t, "the session is up and the ISP got an empty End-of-RIB", 20*time.Second, func() (bool, string) {
		got := arr.list()
		return peer.established(t) && slices.Equal(got, []string{"eor"}), fmt.Sprint(got)
	})
}

// TestReconfigureBeforeFirstAnnouncements: a reload before the first
// SetAnnouncements changes which sessions will open, and still opens none.
func TestReconfigureBeforeFirstAnnouncements(t *testing.T) {
	port := freePort(t)
	peerB := startTestPeer(t, "127.0.0.3", port, 64502, nil)
	cfg := loopbackConfig(t)
	sp := New(Options{PeerPort: uint32(port), FirstAnnounceWait: MaxFirstAnnounceWait})
	ctx := context.Background()
	must(t, sp.Start(ctx, cfg))
	defer sp.Stop(ctx)

	next := loopbackConfig(t)
	next.Uplinks = next.Uplinks[1:] // isp-a removed
	must(t, sp.Reconfigure(ctx, next))
	if n := ourPeers(t, sp); n != 0 {
		t.Fatalf("%d peers configured in GoBGP after Reconfigure, before the first SetAnnouncements; want none", n)
	}
	if ss := sp.Sessions(); len(ss) != 1 || ss[0].Uplink != "isp-b" {
		t.Fatalf("Sessions() = %v; want only isp-b (idle)", ss)
	}
	_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(next))
	must(t, err)
	if n := ourPeers(t, sp); n != 1 {
		t.Fatalf("%d peers after the first SetAnnouncements; want isp-b only", n)
	}
	eventually(t, "isp-b up and holding the site prefix", 20*time.Second, func() (bool, string) {
		got := peerB.received(t)
		return peerB.established(t) && len(got) == 1, fmt.Sprint(got)
	})
}

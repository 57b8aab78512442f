package bgp

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestStopKeepsRoutesStale: after Stop, an ISP that negotiated graceful
// restart still holds the site prefix (marked stale) once it has seen the
// session go down; with graceful restart off in our config it withdraws it.
// Run with and without the RFC 8538 N bit offered by the peer.
func TestStopKeepsRoutesStale(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ourGR        bool
		notification bool
		want         map[string]string
	}{
		{"graceful restart", true, false, map[string]string{"198.51.100.0/24": "aspath=64500 comm=64501:100 med=7 stale"}},
		{"graceful restart, peer offers RFC 8538", true, true, map[string]string{"198.51.100.0/24": "aspath=64500 comm=64501:100 med=7 stale"}},
		{"graceful restart off", false, true, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			peer := startTestPeer(t, "127.0.0.2", port, 64501, nil, withGracefulRestart(tc.notification))
			cfg := loopbackConfig(t)
			cfg.BGP.GracefulRestart = tc.ourGR
			cfg.BGP.RestartTime = 60 * time.Second
			cfg.Uplinks = cfg.Uplinks[:1]
			sp := New(Options{PeerPort: uint32(port)})
			ctx := context.Background()
			must(t, sp.Start(ctx, cfg))
			stopped := false
			defer func() {
				if !stopped {
					sp.Stop(ctx)
				}
			}()
			_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
			must(t, err)
			up := map[string]string{"198.51.100.0/24": "aspath=64500 comm=64501:100 med=7"}
			eventually(t, "the ISP holds the site prefix", 20*time.Second, func() (bool, string) {
				got := peer.received(t)
				return fmt.Sprint(got) == fmt.Sprint(up), fmt.Sprint(got)
			})

			// GoBGP v4.8.0 reads a path's stale flag in ListPath outside its
			// lock while the FSM goroutine marks paths stale under it. One
			// management call (ListPeer) after our last ListPath orders that
			// read before the peer's session-down handling.
			_ = peer.established(t)

			sp.Stop(ctx)
			stopped = true
			eventually(t, "the ISP saw the session go down", 10*time.Second, func() (bool, string) {
				return !peer.established(t), "still established"
			})
			// The peer processes its own session end (and any flush) before it
			// reports the state: what it holds now is what it keeps.
			eventually(t, "the ISP keeps (or drops) the prefix as expected", 5*time.Second, func() (bool, string) {
				got := peer.received(t)
				return fmt.Sprint(got) == fmt.Sprint(tc.want), fmt.Sprint(got)
			})
		})
	}
}

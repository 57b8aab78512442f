package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/config"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// withdrawAll makes the test peer stop sending every route it originates.
func (p *testPeer) withdrawAll(t *testing.T) {
	t.Helper()
	fam := bgp.RF_IPv4_UC
	must(t, p.srv.DeletePath(apiutil.DeletePathRequest{DeleteAll: true, DeleteFamily: &fam}))
}

func (p *testPeer) originate(t *testing.T, addr string, prefixes ...string) {
	t.Helper()
	for _, s := range prefixes {
		nlri, _ := bgp.NewIPAddrPrefix(netip.MustParsePrefix(s))
		nh, _ := bgp.NewPathAttributeNextHop(netip.MustParseAddr(addr))
		_, err := p.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: bgp.RF_IPv4_UC, Nlri: nlri, Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nh}}}})
		must(t, err)
	}
}

// notifications delivers the text of every NOTIFICATION the test peer
// receives.
func (p *testPeer) notifications(t *testing.T) <-chan string {
	t.Helper()
	ch := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	must(t, p.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
		if ev.Peer.State.DisconnectReason == api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED {
			select {
			case ch <- ev.Peer.State.DisconnectMessage:
			default:
			}
		}
	}}, server.WatchPeer()))
	return ch
}

// adminState is GoBGP's admin state of our peer addr.
func (s *Speaker) adminState(t *testing.T, addr string) api.PeerState_AdminState {
	t.Helper()
	var st api.PeerState_AdminState
	must(t, s.srv.ListPeer(context.Background(), &api.ListPeerRequest{Address: addr}, func(p *api.Peer) { st = p.State.AdminState }))
	return st
}

// TestMaxPrefixHoldDown: an ISP that sends more than max_prefixes is held
// down with the cause and retry time in SessionState; the session comes
// back after max_prefix_restart, or at once on ResetUplink when the restart
// is 0 (GoBGP alone would leave it down for good).
func TestMaxPrefixHoldDown(t *testing.T) {
	retryAt := regexp.MustCompile(`^max-prefix exceeded: more than 3; retry at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	for _, tc := range []struct {
		name    string
		restart time.Duration
		held    *regexp.Regexp
		// full: import: full, so the session starts as a bulk transfer
		// (bulkimport.go) and the limit is read from GoBGP's table.
		full bool
	}{
		{"restart after max_prefix_restart", 2 * time.Second, retryAt, false},
		{"held until reset", 0, regexp.MustCompile(`^max-prefix exceeded: more than 3; held down until the uplink is reset$`), false},
		{"full table in bulk transfer", 2 * time.Second, retryAt, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			peer := startTestPeer(t, "127.0.0.2", port, 64501, []string{"0.0.0.0/0", "192.0.2.0/24", "203.0.113.0/24", "198.18.0.0/24", "198.18.1.0/24"})
			notified := peer.notifications(t)
			cfg := loopbackConfig(t)
			cfg.Uplinks = cfg.Uplinks[:1]
			cfg.Uplinks[0].BGP.MaxPrefixes = 3
			cfg.Uplinks[0].BGP.MaxPrefixRestart = tc.restart
			if tc.full {
				cfg.Uplinks[0].BGP.Import = config.ImportFull
			}
			sp := startSpeaker(t, port, cfg)
			ctx := context.Background()
			_, err := sp.SetAnnouncements(ctx, BaseAnnouncements(cfg))
			must(t, err)

			eventually(t, "held down for max-prefix", 20*time.Second, func() (bool, string) {
				ss := sp.Sessions()
				return len(ss) == 1 && tc.held.MatchString(ss[0].HeldDown) && !ss[0].Established(), fmt.Sprint(ss)
			})
			st := sp.Sessions()[0]
			if st.LastError != "max-prefix exceeded: more than 3" {
				t.Errorf("LastError = %q; want the max-prefix cause", st.LastError)
			}
			if got := sp.adminState(t, "127.0.0.2"); got != api.PeerState_ADMIN_STATE_PFX_CT {
				t.Fatalf("GoBGP admin state %v; want PFX_CT (held down by the limit)", got)
			}
			// RFC 4486 section 4: Cease, subcode 1.
			select {
			case msg := <-notified:
				if !strings.Contains(msg, "code 6(cease) subcode 1(") {
					t.Errorf("the ISP received %q; want Cease subcode 1 (maximum number of prefixes reached)", msg)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the ISP received no NOTIFICATION")
			}
			// The ISP fixes its leak.
			peer.withdrawAll(t)
			peer.originate(t, "127.0.0.2", "0.0.0.0/0")
			if tc.restart == 0 {
				// A carrier loss closes the uplink's sessions but must not
				// lift the hold-down: only an operator's reset does.
				must(t, sp.CloseUplink(ctx, "isp-a", "carrier lost"))
				if ss := sp.Sessions(); len(ss) != 1 || !tc.held.MatchString(ss[0].HeldDown) {
					t.Fatalf("after CloseUplink: %v; want still held down", ss)
				}
				if got := sp.adminState(t, "127.0.0.2"); got != api.PeerState_ADMIN_STATE_PFX_CT {
					t.Fatalf("GoBGP admin state after CloseUplink %v; want still PFX_CT", got)
				}
				must(t, sp.ResetUplink(ctx, "isp-a", "operator reset"))
			}
			eventually(t, "the session is back and no longer held down", 20*time.Second, func() (bool, string) {
				ss := sp.Sessions()
				return len(ss) == 1 && ss[0].Established() && ss[0].HeldDown == "", fmt.Sprint(ss)
			})
			if got := sp.Sessions()[0].LastError; got != "max-prefix exceeded: more than 3" {
				t.Errorf("LastError after recovery = %q; want the last real error kept, not a state name", got)
			}
		})
	}
}

// TestLastErrorOnlyErrors: a session that comes up cleanly has no
// LastError (GoBGP reports "open-msg-negotiated" on the way up).
func TestLastErrorOnlyErrors(t *testing.T) {
	port := freePort(t)
	startTestPeer(t, "127.0.0.2", port, 64501, nil)
	cfg := loopbackConfig(t)
	cfg.Uplinks = cfg.Uplinks[:1]
	sp := New(Options{PeerPort: uint32(port), FirstAnnounceWait: time.Millisecond})
	ctx := context.Background()
	must(t, sp.Start(ctx, cfg))
	defer sp.Stop(ctx)
	eventually(t, "session established", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return len(ss) == 1 && ss[0].Established(), fmt.Sprint(ss)
	})
	if got := sp.Sessions()[0].LastError; got != "" {
		t.Errorf("LastError = %q after a clean start; want none", got)
	}
}

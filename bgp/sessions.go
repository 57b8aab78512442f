package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/multihomed/multihomed/config"
)

// sessionConfig is what a session was added with; a change resets it.
type sessionConfig struct {
	uplink      string
	internal    bool
	peerASN     uint32
	local       netip.Addr
	password    string
	hold, keep  time.Duration
	retry       time.Duration
	ttlSecurity bool
	maxPrefixes uint32
	// maxPrefixRestart is applied without resetting the session (see
	// sameSession).
	maxPrefixRestart time.Duration
	gr               bool
	restart          time.Duration
	neighborAddr     netip.Addr
	passive          bool // wait for the peer to connect (edgepeers.go)
}

// Changed is signalled (level-triggered: bursts merge) whenever a session
// changes state, or an internal peer's routes change (SiteView, in
// sitestate.go). Read Sessions for the current states.
func (s *Speaker) Changed() <-chan struct{} { return s.changed }

// Sessions returns the state of every configured session, ordered by uplink
// then neighbor.
func (s *Speaker) Sessions() []routing.SessionState {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	out := make([]routing.SessionState, 0, len(s.states))
	for addr, st := range s.states {
		if lim := s.limits[addr]; lim != nil {
			st.Received, st.Accepted = lim.counts.received, lim.counts.accepted
			if lim.counts.stale && st.Established() {
				st.ImportPhase = routing.ImportCounting
			}
		}
		if s.bulk != nil {
			// In a bulk transfer, once read: GoBGP's count as of the last
			// read, newer than the stopped watch's.
			if n, ok := s.bulk.received[addr]; ok {
				st.Received = n
			}
			if s.bulk.initial[addr] != nil {
				st.ImportPhase = routing.ImportReceiving
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Uplink != out[j].Uplink {
			return out[i].Uplink < out[j].Uplink
		}
		return out[i].Neighbor.Less(out[j].Neighbor)
	})
	return out
}

// onPeer runs on GoBGP's goroutine: it records the state and signals
// without blocking.
func (s *Speaker) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE && ev.Type != apiutil.PEER_EVENT_INIT {
		return
	}
	addr := ev.Peer.Conf.NeighborAddress
	state := fsmName(ev.Peer.State.SessionState)
	s.stateMu.Lock()
	old, known := s.states[addr]
	if !known {
		s.stateMu.Unlock()
		return // a peer we have since deleted
	}
	if old.State == state {
		s.stateMu.Unlock()
		return
	}
	st := old
	st.State, st.Since = state, at
	switch {
	case heldForPrefixes(ev) && old.HeldDown == "":
		s.holdDownLocked(addr, &st, at)
	case !heldForPrefixes(ev):
		if msg := disconnectError(ev.Peer.State); msg != "" {
			st.LastError = msg
		}
	}
	s.states[addr] = st
	switch {
	case state == "established":
		s.transferStartedLocked(addr)
	case old.State == "established":
		s.transferEndedLocked(addr, "the session went down")
	}
	s.stateMu.Unlock()
	if state == "established" || old.State == "established" {
		s.log.Info("bgp session state", keyUplink, st.Uplink, keyPeer, addr, keyState, state, "from", old.State, "reason", st.LastError, "held_down", st.HeldDown)
	}
	s.signalChanged()
}

// signalChanged wakes the reader of Changed without blocking.
func (s *Speaker) signalChanged() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// disconnectError returns why a session failed, or "" when the state change
// was no failure: GoBGP attaches a reason to every transition, including
// "open-msg-negotiated" on the way up.
func disconnectError(ps apiutil.PeerState) string {
	switch ps.DisconnectReason {
	case api.PeerState_DISCONNECT_REASON_HOLD_TIMER_EXPIRED,
		api.PeerState_DISCONNECT_REASON_NOTIFICATION_SENT,
		api.PeerState_DISCONNECT_REASON_NOTIFICATION_RECEIVED,
		api.PeerState_DISCONNECT_REASON_READ_FAILED,
		api.PeerState_DISCONNECT_REASON_WRITE_FAILED,
		api.PeerState_DISCONNECT_REASON_INVALID_MSG,
		api.PeerState_DISCONNECT_REASON_HARD_RESET,
		api.PeerState_DISCONNECT_REASON_BAD_PEER_AS,
		api.PeerState_DISCONNECT_REASON_RESTART_TIMER_EXPIRED:
		if ps.DisconnectMessage != "" {
			return ps.DisconnectMessage
		}
		return ps.DisconnectReason.String()
	}
	return ""
}

func fsmName(st bgp.FSMState) string {
	switch st {
	case bgp.BGP_FSM_IDLE:
		return "idle"
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

func sessionConfigs(cfg *config.Config) []sessionConfig {
	var out []sessionConfig
	for _, u := range cfg.Uplinks {
		for _, sess := range u.BGP.Sessions() {
			out = append(out, sessionConfig{
				uplink: u.Name, peerASN: u.BGP.PeerASN, local: sess.Local, neighborAddr: sess.Neighbor,
				password: u.BGP.Password.Reveal(), hold: u.BGP.HoldTime, keep: u.BGP.Keepalive,
				retry: u.BGP.ConnectRetry, ttlSecurity: u.BGP.TTLSecurity, maxPrefixes: u.BGP.MaxPrefixes,
				maxPrefixRestart: u.BGP.MaxPrefixRestart,
				gr:               cfg.BGP.GracefulRestart, restart: cfg.BGP.RestartTime,
			})
		}
	}
	for _, p := range cfg.IBGP.Peers {
		out = append(out, sessionConfig{
			internal: true, peerASN: cfg.Node.ASN, local: p.LocalAddress, neighborAddr: p.Neighbor,
			password: p.Password.Reveal(), hold: p.HoldTime, keep: p.HoldTime / 3, retry: p.ConnectRetry,
			maxPrefixes: ibgpMaxPrefixes(p), passive: ibgpPassive(p), gr: cfg.BGP.GracefulRestart, restart: cfg.BGP.RestartTime,
		})
	}
	return out
}

// DefaultIBGPMaxPrefixes limits what an internal router may send us: we
// accept nothing from it, but a runaway peer must not fill memory.
const DefaultIBGPMaxPrefixes = 10000

// deferralTime bounds how long a restarting speaker holds its UPDATEs back
// waiting for the peers' End-of-RIB (RFC 4724 section 4.1).
const deferralTime = time.Second

// addPeer installs sc. restarting marks a session of the first set after
// Start, which opens with the Restart and Forwarding State bits.
func (s *Speaker) addPeer(ctx context.Context, sc sessionConfig, restarting bool) error {
	fam := familyV6
	if sc.neighborAddr.Is4() {
		fam = familyV4
	}
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: sc.neighborAddr.String(),
			PeerAsn:         sc.peerASN,
			AuthPassword:    sc.password,
			Description:     peerDescription(sc),
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      uint64(sc.retry / time.Second),
			HoldTime:          uint64(sc.hold / time.Second),
			KeepaliveInterval: uint64(sc.keep / time.Second),
			// After our own reset (ResetUplink), retry as soon as a normal
			// connection attempt would, not after GoBGP's 30 s default.
			IdleHoldTimeAfterReset: uint64(max(sc.retry/time.Second, 1)),
		}},
		Transport: &api.Transport{RemotePort: s.opts.PeerPort, PassiveMode: sc.passive},
		AfiSafis: []*api.AfiSafi{{
			Config: &api.AfiSafiConfig{Family: fam, Enabled: true},
			// No PrefixLimits: GoBGP would count the whole Adj-RIB-In
			// after every UPDATE. prefixcount.go enforces the limit.
			MpGracefulRestart: &api.MpGracefulRestart{
				Config: &api.MpGracefulRestartConfig{Enabled: sc.gr},
			},
		}},
	}
	if sc.local.IsValid() {
		p.Transport.LocalAddress = sc.local.String()
	}
	if sc.ttlSecurity {
		// RFC 5082: a directly connected peer's packets arrive with TTL 255.
		p.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: 255}
	}
	if sc.gr {
		p.GracefulRestart = &api.GracefulRestart{
			Enabled:     true,
			RestartTime: uint32(sc.restart / time.Second),
			// RFC 8538's N bit is deliberately not offered. Stop needs
			// none of it (it sends no NOTIFICATION at all), and with it
			// an ISP keeps the site's routes stale after its hold timer
			// expires: a cut it cannot see (TestHoldExpiryAtISP) would
			// then blackhole inbound traffic for restart_time instead of
			// failing over after the hold time.
			NotificationEnabled: false,
			// RFC 4724 section 3: every session of a new process opens
			// with the Restart State bit and the Forwarding State bit per
			// family. The forwarding state is true: the site's egress
			// routes stay in the kernel while the daemon restarts. Without
			// F the peer must flush the routes it kept stale for us the
			// moment the new session comes up. On a cold start the bits
			// cost nothing: the peer holds nothing stale to keep.
			LocalRestarting: restarting,
			// RFC 4724 section 4.1: while restarting, GoBGP holds our
			// UPDATEs until every peer sent End-of-RIB or this timer
			// fires. Toward the ISPs we send only our own prefixes, so the
			// wait buys nothing; keep it short. With ibgp.advertise: full
			// a core peer then gets our End-of-RIB before the ISPs'
			// tables are re-imported and flushes the stale full routes it
			// kept (docs/operations.md, restart). A long deferral for core
			// peers is not the cure: GoBGP waits for every configured
			// graceful-restart peer, a down uplink included, so on a start
			// with a dead uplink the core would get nothing, not even our
			// default, for the whole deferral.
			DeferralTime: uint32(deferralTime / time.Second),
		}
	}
	s.stateMu.Lock()
	s.states[sc.neighborAddr] = idleState(sc)
	lim := &prefixLimit{max: sc.maxPrefixes, restart: sc.maxPrefixRestart, filter: newImportFilter(s.cfg, sc)}
	if s.bulk != nil && s.bulk.active {
		lim.counts.markStale() // the watch is off: counted by the transfer's rebuild
	}
	s.limits[sc.neighborAddr] = lim
	s.stateMu.Unlock()
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		s.stateMu.Lock()
		delete(s.states, sc.neighborAddr)
		s.stateMu.Unlock()
		return fmt.Errorf("bgp: add peer %s (uplink %s): %w", sc.neighborAddr, sc.uplink, err)
	}
	s.sessions[sc.neighborAddr] = sc
	s.peerConfs[sc.neighborAddr] = p
	return nil
}

func idleState(sc sessionConfig) routing.SessionState {
	return routing.SessionState{Uplink: sc.uplink, Internal: sc.internal, Neighbor: sc.neighborAddr, State: "idle", Since: time.Now()}
}

func (s *Speaker) deletePeer(ctx context.Context, addr netip.Addr) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("bgp: delete peer %s: %w", addr, err)
	}
	delete(s.sessions, addr)
	delete(s.peerConfs, addr)
	s.stateMu.Lock()
	// GoBGP's peer-down event may come after the state is gone, when
	// onPeer ignores it: the transfer ends here.
	s.transferEndedLocked(addr, "the session was deleted")
	if s.bulk != nil {
		delete(s.bulk.received, addr)
	}
	delete(s.states, addr)
	if lim := s.limits[addr]; lim != nil && lim.timer != nil {
		lim.timer.Stop()
	}
	delete(s.limits, addr)
	s.stateMu.Unlock()
	return nil
}

func peerDescription(sc sessionConfig) string {
	if sc.internal {
		return "internal"
	}
	return sc.uplink
}

// ResetUplink is an operator's reset: it closes the uplink's sessions at
// once (a BGP NOTIFICATION, cease/administrative reset) and lets them
// reconnect after connect_retry, and opens a session held down after
// max-prefix again at once.
func (s *Speaker) ResetUplink(ctx context.Context, uplink, reason string) error {
	return s.resetUplink(ctx, uplink, reason, true)
}

// CloseUplink closes the uplink's sessions like ResetUplink but leaves a
// max-prefix hold-down in place (only time or an operator lifts it). The
// controller calls it on carrier loss: the session is dead anyway, and
// waiting for the hold timer would only delay its return once the link is
// back; a flapping link must not reopen a session held down for leaking.
func (s *Speaker) CloseUplink(ctx context.Context, uplink, reason string) error {
	return s.resetUplink(ctx, uplink, reason, false)
}

func (s *Speaker) resetUplink(ctx context.Context, uplink, reason string, releaseHeld bool) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: speaker not started")
	}
	var errs []error
	for addr, sc := range s.sessions {
		if sc.internal || sc.uplink != uplink {
			continue
		}
		s.stateMu.Lock()
		held := s.states[addr].HeldDown != ""
		s.stateMu.Unlock()
		if held {
			if !releaseHeld {
				continue
			}
			if err := s.releaseHoldDownLocked(ctx, addr, "reset: "+reason); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Communication: reason}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: reset %s (uplink %s): %w", addr, uplink, err))
		}
	}
	return errors.Join(errs...)
}

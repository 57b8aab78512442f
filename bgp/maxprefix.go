package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
)

// GoBGP closes a session whose peer sent more than max_prefixes (Cease,
// maximum number of prefixes reached, RFC 4486) and then leaves the peer
// administratively down for good, reporting only the read error that
// followed. The speaker turns that into a hold-down with a cause and an
// end: SessionState.HeldDown says why and until when,
// uplinks[].bgp.max_prefix_restart later (or ResetUplink at once) opens the
// session again.

// prefixLimit is what the watch callback needs to explain and end a
// max-prefix hold-down of one session. Guarded by Speaker.stateMu.
type prefixLimit struct {
	max     uint32
	restart time.Duration // 0: held down until ResetUplink
	timer   *time.Timer   // the scheduled retry, while held down
	counts  prefixCounts  // what the session sent and import accepted
	filter  *importFilter // what import accepts (importfilter.go)
}

// holdDownLocked records that GoBGP closed the session to addr for
// exceeding its limit and schedules the retry. It runs on GoBGP's watch
// goroutine with stateMu held: it must not block.
func (s *Speaker) holdDownLocked(addr netip.Addr, st *routing.SessionState, now time.Time) {
	lim := s.limits[addr]
	if lim == nil {
		return
	}
	// GoBGP does not report the count it saw, only that it was above the
	// limit (it checks after each UPDATE).
	cause := fmt.Sprintf("max-prefix exceeded: more than %d", lim.max)
	st.LastError = cause
	if lim.restart <= 0 {
		st.HeldDown = cause + "; held down until the uplink is reset"
		return
	}
	st.HeldDown = fmt.Sprintf("%s; retry at %s", cause, now.Add(lim.restart).UTC().Format(time.RFC3339))
	if lim.timer != nil {
		lim.timer.Stop()
	}
	lim.timer = time.AfterFunc(lim.restart, func() { s.retryAfterHoldDown(addr) })
}

// retryAfterHoldDown runs when max_prefix_restart has passed.
func (s *Speaker) retryAfterHoldDown(addr netip.Addr) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return
	}
	if err := s.releaseHoldDownLocked(context.Background(), addr, "max_prefix_restart elapsed"); err != nil {
		s.log.Error("bgp: end max-prefix hold-down", keyPeer, addr, "err", err)
	}
}

// releaseHoldDownLocked ends a hold-down of addr, if any, and opens the
// session again at once. opMu must be held.
func (s *Speaker) releaseHoldDownLocked(ctx context.Context, addr netip.Addr, why string) error {
	s.stateMu.Lock()
	st, ok := s.states[addr]
	if !ok || st.HeldDown == "" {
		s.stateMu.Unlock()
		return nil
	}
	st.HeldDown = ""
	s.states[addr] = st
	if lim := s.limits[addr]; lim != nil && lim.timer != nil {
		lim.timer.Stop()
		lim.timer = nil
	}
	s.stateMu.Unlock()
	s.log.Info("bgp: max-prefix hold-down over; opening the session again", keyUplink, st.Uplink, keyPeer, addr, "why", why)
	// Re-create the peer rather than EnablePeer: an enabled peer waits
	// GoBGP's fixed 5 s idle hold time first, a new one connects at once.
	// The session is down, so deleting it sends nothing.
	sc, ok := s.sessions[addr]
	if !ok {
		return nil
	}
	if err := s.deletePeer(ctx, addr); err != nil {
		return fmt.Errorf("bgp: re-create %s after max-prefix hold-down: %w", addr, err)
	}
	if err := s.addPeer(ctx, sc, false); err != nil {
		return fmt.Errorf("bgp: re-create %s after max-prefix hold-down: %w", addr, err)
	}
	s.stateMu.Lock()
	if fresh, ok := s.states[addr]; ok {
		fresh.LastError = st.LastError
		s.states[addr] = fresh
	}
	s.stateMu.Unlock()
	s.signalChanged()
	return nil
}

// heldForPrefixes reports whether GoBGP has the peer down for its limit.
func heldForPrefixes(ev *apiutil.WatchEventMessage_PeerEvent) bool {
	return ev.Peer.State.AdminState == api.PeerState_ADMIN_STATE_PFX_CT
}

// stopHoldTimersLocked cancels every scheduled retry; stateMu must be held.
func (s *Speaker) stopHoldTimersLocked() {
	for _, lim := range s.limits {
		if lim.timer != nil {
			lim.timer.Stop()
			lim.timer = nil
		}
	}
}

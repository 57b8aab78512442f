package routing

import (
	"net/netip"
	"time"
)

// SessionState is one BGP session as the speaker sees it.
type SessionState struct {
	// Uplink is the uplink the session belongs to; empty for an internal
	// (iBGP) peer.
	Uplink string
	// Internal is true for an iBGP session with an internal router.
	Internal bool
	// Neighbor is the peer's address.
	Neighbor netip.Addr
	// State is the RFC 4271 FSM state: idle, connect, active, opensent,
	// openconfirm or established.
	State string
	// Since is when State was entered.
	Since time.Time
	// LastError is the peer's last disconnect reason, if any.
	LastError string
}

// Established reports whether the session is up.
func (s SessionState) Established() bool { return s.State == "established" }

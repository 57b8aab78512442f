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
	// LastError is why the session last failed (a NOTIFICATION sent or
	// received, hold timer expiry, a read error, max-prefix exceeded), if
	// it ever did; state changes that are no failure leave it unchanged.
	LastError string
	// HeldDown is non-empty while the speaker keeps the session down on
	// purpose, and says why and until when, e.g. "max-prefix exceeded:
	// more than 1000; retry at 2026-11-27T15:04:05Z".
	HeldDown string
	// Received and Accepted count the prefixes of the session's family
	// (the family of Neighbor) that the peer sent and that import policy
	// accepted. They trail the wire by the speaker's update queue and are
	// zero while no session is up (graceful restart keeps stale routes
	// counted until the peer's End-of-RIB or the restart timer).
	Received, Accepted uint64
	// ImportPhase is "" while the counts follow the update stream (or the
	// session is down), and otherwise how far they are behind the table
	// (ImportReceiving, ImportCounting).
	ImportPhase string
	// SoftResetsOut counts the outbound soft resets the speaker made on
	// the session since it was configured. Each runs the export policy
	// over every best path: with a full table, seconds of work. An
	// announcement change makes one only while the table is small.
	SoftResetsOut uint64
}

// The phases of SessionState.ImportPhase.
const (
	// ImportReceiving: a full table's initial transfer is under way.
	// Received is the speaker's count of the table as of its last read
	// (seconds apart); Accepted is counted once the transfer is over.
	ImportReceiving = "receiving"
	// ImportCounting: every route the peer sent is in the RIB (and in
	// use), and the counts wait for a rebuild from the table: after the
	// session's initial transfer (Received is as of the transfer's last
	// read until then), while another session's transfer runs (the speaker
	// follows no session's update stream meanwhile), or after a reload
	// that changed import policy (Accepted is the old rules').
	ImportCounting = "counting"
)

// Established reports whether the session is up.
func (s SessionState) Established() bool { return s.State == "established" }

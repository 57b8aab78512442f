package lab

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Path is one BGP path a router holds for a prefix, as the router itself
// reports it.
type Path struct {
	// ASPath lists the path's AS numbers, nearest first.
	ASPath []uint32
	// Communities are standard communities written ASN:value.
	Communities []string
	// LargeCommunities are written global:local1:local2.
	LargeCommunities []string
	// MED is nil when the path carries none.
	MED *uint32
	// LocalPref is the path's LOCAL_PREF where the router reports it.
	LocalPref *uint32
	// Best marks the router's best path.
	Best bool
	// From is the neighbor the path was learned from, when known.
	From netip.Addr

	proto string // BIRD protocol name, mapped to From
}

// Session is a router's view of one BGP session.
type Session struct {
	// Established reports whether the session is up.
	Established bool
	// State is the router's own word for the state.
	State string
	// Resets counts how often the session came up (FRR) or, for BIRD, is
	// derived from the time it last changed state: equal values before and
	// after an action mean the session was not reset by it.
	Resets int
	// Since is when the session last changed state (BIRD), empty for FRR.
	Since string
	// LastReset is the router's note on why the session last went down.
	LastReset string
	// GracefulRestartCap is FRR's word on the RFC 4724 capability, such as
	// "advertisedAndReceived"; empty for BIRD.
	GracefulRestartCap string
}

// Router is what tests read from an ISP or transit router.
type Router interface {
	// Name names the router instance.
	Name() string
	// Paths returns every path held for exactly p.
	Paths(ctx context.Context, p netip.Prefix) ([]Path, error)
	// Session returns the state of the session with neighbor.
	Session(ctx context.Context, neighbor netip.Addr) (Session, error)
	// Received returns the prefixes accepted from neighbor.
	Received(ctx context.Context, neighbor netip.Addr) ([]netip.Prefix, error)
	// Log returns the router's log.
	Log() string
}

func parseASPath(s string) []uint32 {
	var out []uint32
	for _, f := range strings.Fields(s) {
		if n, err := strconv.ParseUint(strings.Trim(f, "{}()[]"), 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out
}

func sortPrefixes(ps []netip.Prefix) {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}

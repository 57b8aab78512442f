package bgp

import (
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
)

// BestRoute is a change of the best path to a prefix, as Options.OnBest
// reports it.
type BestRoute struct {
	Prefix netip.Prefix
	// Uplink is the uplink whose session now has the best path; "" when
	// no uplink has it any more (withdrawn, or the best path is the site's
	// own or an internal peer's).
	Uplink string
}

// onBest runs on a GoBGP watch goroutine for every best-path change of the
// RIB (after import policy): it names the uplink and hands the batch to
// Options.OnBest, which must not block.
func (s *Speaker) onBest(paths []*apiutil.Path, _ time.Time) {
	out := make([]BestRoute, 0, len(paths))
	s.stateMu.Lock()
	for _, p := range paths {
		pfx, ok := nlriPrefix(p.Nlri)
		if !ok {
			continue
		}
		br := BestRoute{Prefix: pfx}
		if st, ok := s.states[p.PeerAddress]; ok && !st.Internal && !p.Withdrawal {
			br.Uplink = st.Uplink
		}
		out = append(out, br)
	}
	s.stateMu.Unlock()
	if len(out) > 0 {
		s.opts.OnBest(out)
	}
}

package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Announced returns the announcements in force, per uplink.
func (s *Speaker) Announced() map[string][]routing.Announcement {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return cloneAnns(s.anns)
}

// Learned returns, per uplink, the prefixes its sessions sent that passed
// import policy, sorted. With a full table that is a million prefixes: use
// Sessions for counts and LearnedSample for a look.
func (s *Speaker) Learned() (map[string][]netip.Prefix, error) { return s.learned(0) }

// LearnedSample is Learned cut to at most n prefixes per uplink (those the
// walk of the RIB meets first, then sorted). It still walks the whole RIB
// once.
func (s *Speaker) LearnedSample(n int) (map[string][]netip.Prefix, error) {
	return s.learned(max(n, 1))
}

// learned lists at most limit prefixes per uplink; 0 means all.
func (s *Speaker) learned(limit int) (map[string][]netip.Prefix, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return nil, errors.New("bgp: speaker not started")
	}
	out := map[string][]netip.Prefix{}
	for _, fam := range []bgp.Family{bgp.RF_IPv6_UC, bgp.RF_IPv4_UC} {
		err := s.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam}, func(nlri bgp.NLRI, paths []*apiutil.Path) {
			p, err := netip.ParsePrefix(nlri.String())
			if err != nil {
				return
			}
			for _, path := range paths {
				if sc, ok := s.sessions[path.PeerAddress]; ok && !path.Filtered && (limit == 0 || len(out[sc.uplink]) < limit) {
					out[sc.uplink] = append(out[sc.uplink], p)
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("bgp: list %s routes: %w", fam, err)
		}
	}
	for _, ps := range out {
		slices.SortFunc(ps, comparePrefix)
	}
	return out, nil
}

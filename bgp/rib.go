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
// import policy, sorted.
func (s *Speaker) Learned() (map[string][]netip.Prefix, error) {
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
				if sc, ok := s.sessions[path.PeerAddress]; ok && !path.Filtered {
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

package bgp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/multihomed/multihomed/routing"

	"github.com/google/uuid"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/multihomed/multihomed/config"
)

// SetAnnouncements makes each uplink announce exactly anns[uplink]: a site
// prefix left out is withdrawn from that uplink only, an uplink left out
// announces nothing. Prefixes that are not site prefixes are refused (named
// in the error) and the rest applied. It is idempotent: a call with what is
// already announced changes nothing on the wire. It returns the
// announcements in force when it returns. The first call after Start also
// opens the sessions.
func (s *Speaker) SetAnnouncements(ctx context.Context, anns map[string][]routing.Announcement) (map[string][]routing.Announcement, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return nil, errors.New("bgp: speaker not started")
	}
	var errs []error
	want := map[string][]routing.Announcement{}
	for uplink, list := range anns {
		if !s.hasUplink(uplink) {
			errs = append(errs, fmt.Errorf("bgp: uplink %q is not configured; nothing announced to it", uplink))
			continue
		}
		for _, a := range list {
			if !slices.Contains(s.cfg.Site.Prefixes, a.Prefix) {
				errs = append(errs, fmt.Errorf("bgp: %s is not a site prefix; refused for uplink %s", a.Prefix, uplink))
			}
		}
		if n := normalize(list, s.cfg.Site.Prefixes); len(n) > 0 {
			want[uplink] = n
		}
	}
	if err := s.applyLocked(ctx, want, false, false, false); err != nil {
		errs = append(errs, err)
	}
	// The first call opens the sessions: each peer's first UPDATEs carry
	// what was just applied, End-of-RIB comes after them.
	if err := s.addPendingLocked(ctx); err != nil {
		errs = append(errs, err)
	}
	return cloneAnns(s.anns), errors.Join(errs...)
}

func (s *Speaker) hasUplink(name string) bool {
	return slices.ContainsFunc(s.cfg.Uplinks, func(u config.Uplink) bool { return u.Name == name })
}

// applyLocked installs want: originates new prefixes, replaces policies,
// soft-resets inbound every session when reimport (the import policy
// changed), soft-resets outbound the sessions whose announcements changed (forceAll:
// every session, for a new config), then stops originating prefixes nobody
// announces. Adds happen before deletes.
func (s *Speaker) applyLocked(ctx context.Context, want map[string][]routing.Announcement, forceAll, internalChanged, reimport bool) error {
	changedUplinks := map[string]bool{}
	for _, u := range s.cfg.Uplinks {
		if forceAll || !annsEqual(s.anns[u.Name], want[u.Name]) {
			changedUplinks[u.Name] = true
		}
	}
	for addr := range s.resetDue {
		if _, ok := s.sessions[addr]; !ok {
			delete(s.resetDue, addr) // the session is gone
		}
	}
	if len(changedUplinks) == 0 && !internalChanged && !forceAll && len(s.resetDue) == 0 {
		return nil
	}
	needed := map[netip.Prefix]bool{}
	for _, list := range want {
		for _, a := range list {
			needed[a.Prefix] = true
		}
	}
	if s.defLP > 0 {
		needed[netip.MustParsePrefix("::/0")] = true
		needed[netip.MustParsePrefix("0.0.0.0/0")] = true
	}
	for _, p := range sortedPrefixes(needed) {
		if _, ok := s.paths[p]; ok {
			continue
		}
		id, err := s.originate(p)
		if err != nil {
			return err
		}
		s.paths[p] = id
	}
	if err := s.srv.SetPolicies(ctx, buildPolicies(s.policyInputLocked(want))); err != nil {
		return fmt.Errorf("bgp: replace policies: %w", err)
	}
	s.anns = want
	var errs []error
	// Inbound first: with reimport the import policy changed, and the
	// routes must carry what it sets (the not-inside mark of
	// ibgp.advertise: full) before an outbound reset sends them through
	// the new export; otherwise the core hears every learned route
	// unmarked until the re-import reaches it. GoBGP runs each soft reset
	// in to the end before it answers. Route refresh is not needed: GoBGP
	// keeps Adj-RIB-In.
	for addr := range s.sessions {
		if !reimport {
			break
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: soft reset in %s: %w", addr, err))
		}
	}
	for addr, sc := range s.sessions {
		due := s.resetDue[addr] || forceAll || (sc.internal && internalChanged) || (!sc.internal && changedUplinks[sc.uplink])
		if !due {
			continue
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT}); err != nil {
			s.resetDue[addr] = true // retried by the next apply
			errs = append(errs, fmt.Errorf("bgp: soft reset out %s: %w", addr, err))
			continue
		}
		delete(s.resetDue, addr)
	}
	for p, id := range s.paths {
		if needed[p] {
			continue
		}
		// Always name the path: DeletePath with neither path nor UUID
		// deletes every locally originated path.
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{UUIDs: []uuid.UUID{id}}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: stop originating %s: %w", p, err))
			continue
		}
		delete(s.paths, p)
	}
	return errors.Join(errs...)
}

// originate adds the locally originated path for p with an unspecified next
// hop, so GoBGP sends its own address to each eBGP peer (next-hop-self).
func (s *Speaker) originate(p netip.Prefix) (uuid.UUID, error) {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := bgp.RF_IPv4_UC
	if p.Addr().Is6() {
		fam = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
		}
		attrs = append(attrs, mp)
	} else {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
		}
		attrs = append(attrs, nh)
	}
	res, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: fam, Nlri: nlri, Attrs: attrs}}})
	if err != nil {
		return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
	}
	if len(res) != 1 || res[0].Error != nil {
		return uuid.Nil, fmt.Errorf("bgp: originate %s: %v", p, res)
	}
	s.log.Debug("originating", keyPrefix, p)
	return res[0].UUID, nil
}

func annsEqual(a, b []routing.Announcement) bool {
	return slices.EqualFunc(a, b, routing.Announcement.Equal)
}

func cloneAnns(m map[string][]routing.Announcement) map[string][]routing.Announcement {
	out := make(map[string][]routing.Announcement, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func sortedPrefixes(set map[netip.Prefix]bool) []netip.Prefix {
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, comparePrefix)
	return out
}

// SetInternalDefault makes the speaker originate ::/0 and 0.0.0.0/0 to the
// internal (iBGP) peers with LOCAL_PREF localPref, or withdraw them with 0.
// Nothing learned from an ISP is sent to internal peers. Idempotent.
func (s *Speaker) SetInternalDefault(ctx context.Context, localPref uint32) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: speaker not started")
	}
	if len(s.cfg.IBGP.Peers) == 0 {
		localPref = 0
	}
	if localPref == s.defLP {
		return nil
	}
	old := s.defLP
	s.defLP = localPref
	if err := s.applyLocked(ctx, s.anns, false, true, false); err != nil {
		s.defLP = old
		return err
	}
	return nil
}

// policyInputLocked is what the policies are built from now, with anns as
// the announcements.
func (s *Speaker) policyInputLocked(anns map[string][]routing.Announcement) policyInput {
	return policyInput{cfg: s.cfg, anns: anns, defaultLP: s.defLP, insideLP: s.insideLP}
}

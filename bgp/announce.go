package bgp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"google.golang.org/protobuf/proto"

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
	if err := s.applyLocked(ctx, want, false, false); err != nil {
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

// applyLocked installs want: each site prefix is originated with the
// marks of its slots and (with defLP) each default with its LOCAL_PREF
// mark (exportmarks.go). Changes are made in place while the table is
// small, by re-origination otherwise, in four steps:
//
//  1. install the policy for the slots there are and those to come: new
//     marks get their statements before any path carries them, marks
//     edited in place their new statements;
//  2. with reimport (the import policy changed), soft-reset inbound every
//     session;
//  3. re-originate each path whose marks changed and withdraw each path
//     no slot needs: GoBGP runs the policy over the new path and, where it
//     now rejects it, over the old one, and sends the update or the
//     withdrawal;
//  4. install the policy for the slots left, without the marks no path
//     carries;
//
// then soft-reset outbound the sessions of the uplinks whose slots changed
// in place, and those resetInternal (a reload changed what internal peers
// are sent) or resetDue (an earlier reset failed) name.
func (s *Speaker) applyLocked(ctx context.Context, want map[string][]routing.Announcement, resetInternal, reimport bool) error {
	next, resetUplinks := s.marks.plan(s.cfg, want, s.tableRoutes() < s.inPlaceMax)
	wantOrig := originations(next, s.defLP)
	for addr := range s.resetDue {
		if _, ok := s.sessions[addr]; !ok {
			delete(s.resetDue, addr) // the session is gone
		}
	}
	s.anns = want
	if maps.EqualFunc(s.orig, wantOrig, origination.equal) && maps.EqualFunc(s.marks.slots, next, slot.equal) && !resetInternal && !reimport && len(s.resetDue) == 0 {
		return nil
	}
	if err := s.setPoliciesLocked(ctx, exportStateOf([]map[slotKey]slot{s.marks.slots, next}, s.orig, wantOrig)); err != nil {
		return err
	}
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
	// Adds and changes before withdrawals. A path GoBGP did not take keeps
	// its old slots, so the policy keeps matching what it carries.
	keepOld := func(p netip.Prefix) {
		for k := range next {
			if k.prefix == p {
				delete(next, k)
			}
		}
		for k, sl := range s.marks.slots {
			if k.prefix == p {
				next[k] = sl
			}
		}
	}
	for _, p := range sortedPrefixes(wantOrig) {
		o := wantOrig[p]
		if old, ok := s.orig[p]; ok && old.equal(o) {
			continue
		}
		if err := s.originate(p, o.largeCommunities(s.cfg.Node.ASN)); err != nil {
			errs = append(errs, err)
			keepOld(p)
			continue
		}
		s.orig[p] = o
	}
	for _, p := range sortedPrefixes(s.orig) {
		if _, ok := wantOrig[p]; ok {
			continue
		}
		if err := s.withdrawOrigin(p); err != nil {
			errs = append(errs, err)
			keepOld(p)
			continue
		}
		delete(s.orig, p)
	}
	s.marks.slots = next
	if err := s.setPoliciesLocked(ctx, exportStateOf([]map[slotKey]slot{next}, s.orig)); err != nil {
		errs = append(errs, err)
	}
	for addr, sc := range s.sessions {
		due := s.resetDue[addr] || (resetInternal && sc.internal) || (!sc.internal && resetUplinks[sc.uplink])
		if !due {
			continue
		}
		s.countSoftResetOut(addr)
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT}); err != nil {
			s.resetDue[addr] = true // retried by the next apply
			errs = append(errs, fmt.Errorf("bgp: soft reset out %s: %w", addr, err))
			continue
		}
		delete(s.resetDue, addr)
	}
	return errors.Join(errs...)
}

// countSoftResetOut counts an outbound soft reset of addr in its state.
func (s *Speaker) countSoftResetOut(addr netip.Addr) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if st, ok := s.states[addr]; ok {
		st.SoftResetsOut++
		s.states[addr] = st
	}
}

// tableRoutes is the number of routes the sessions' import accepted, all
// sessions together: what an outbound soft reset would walk, about. While
// the counts are not yet the rules' in force (a transfer, a reload's
// recount), what was received stands in: too many only costs an UPDATE
// the other ISPs did not need, too few a walk of the table.
func (s *Speaker) tableRoutes() uint64 {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	recounting := s.recountQueued != nil || s.recountRunning
	var n uint64
	for addr, lim := range s.limits {
		a := lim.counts.accepted
		if recounting {
			a = max(a, lim.counts.received)
		}
		if s.bulk != nil {
			a = max(a, s.bulk.received[addr]) // in a bulk transfer
		}
		n += a
	}
	return n
}

var (
	defaultV6 = netip.MustParsePrefix("::/0")
	defaultV4 = netip.MustParsePrefix("0.0.0.0/0")
)

// setPoliciesLocked installs the policies for st (and the speaker's
// configuration and inside preferences) unless they are what GoBGP has.
func (s *Speaker) setPoliciesLocked(ctx context.Context, st exportState) error {
	req := buildPolicies(policyInput{cfg: s.cfg, export: st, insideLP: s.insideLP})
	if s.installed != nil && proto.Equal(s.installed, req) {
		return nil
	}
	if err := s.srv.SetPolicies(ctx, req); err != nil {
		s.installed = nil // unknown: install in full next time
		return fmt.Errorf("bgp: replace policies: %w", err)
	}
	s.installed = req
	return nil
}

// originate adds, or replaces (GoBGP keys local paths by prefix), the
// locally originated path for p with the large communities lcs and an
// unspecified next hop, so GoBGP sends its own address to each eBGP peer
// (next-hop-self).
func (s *Speaker) originate(p netip.Prefix, lcs []routing.LargeCommunity) error {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return fmt.Errorf("bgp: originate %s: %w", p, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := bgp.RF_IPv4_UC
	if p.Addr().Is6() {
		fam = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return fmt.Errorf("bgp: originate %s: %w", p, err)
		}
		attrs = append(attrs, mp)
	} else {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return fmt.Errorf("bgp: originate %s: %w", p, err)
		}
		attrs = append(attrs, nh)
	}
	if len(lcs) > 0 {
		vals := make([]*bgp.LargeCommunity, 0, len(lcs))
		for _, c := range lcs {
			vals = append(vals, bgp.NewLargeCommunity(c.Global, c.Local1, c.Local2))
		}
		attrs = append(attrs, bgp.NewPathAttributeLargeCommunities(vals))
	}
	res, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: fam, Nlri: nlri, Attrs: attrs}}})
	if err != nil {
		return fmt.Errorf("bgp: originate %s: %w", p, err)
	}
	if len(res) != 1 || res[0].Error != nil {
		return fmt.Errorf("bgp: originate %s: %v", p, res)
	}
	s.log.Debug("originating", keyPrefix, p, "large_communities", lcs)
	return nil
}

// withdrawOrigin stops originating p. It names the path: a DeletePath
// with neither a path nor a UUID deletes every locally originated path,
// and one by the UUID AddPath returned makes GoBGP list the whole RIB to
// find it (a million paths with full tables).
func (s *Speaker) withdrawOrigin(p netip.Prefix) error {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return fmt.Errorf("bgp: stop originating %s: %w", p, err)
	}
	fam := bgp.RF_IPv4_UC
	if p.Addr().Is6() {
		fam = bgp.RF_IPv6_UC
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{{Family: fam, Nlri: nlri, Withdrawal: true}}}); err != nil {
		return fmt.Errorf("bgp: stop originating %s: %w", p, err)
	}
	return nil
}

func cloneAnns(m map[string][]routing.Announcement) map[string][]routing.Announcement {
	out := make(map[string][]routing.Announcement, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func sortedPrefixes[V any](set map[netip.Prefix]V) []netip.Prefix {
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
	if err := s.applyLocked(ctx, s.anns, false, false); err != nil {
		s.defLP = old
		return err
	}
	return nil
}

// exportStateLocked is the export state of the slots and paths there are.
func (s *Speaker) exportStateLocked() exportState {
	return exportStateOf([]map[slotKey]slot{s.marks.slots}, s.orig)
}

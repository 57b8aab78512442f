package bgp

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/routing"
)

// Export marks: how an announcement change reaches the ISPs without a
// walk of the table, and without an UPDATE to the ISPs it does not concern.
//
// GoBGP applies a changed export policy to the routes already sent only
// with a soft reset out, which runs the policy over every best path: with
// full tables about 4 s for a prepend toward an ISP that sends 1M routes.
// And it sends a changed path to every session that accepts it, also where
// what goes out is what went out before. So each announcement of a site
// prefix toward an uplink is a slot with a mark: the locally originated
// path of the prefix carries the marks of its slots as large communities
// (node.asn:3:N), the mark's export statement gives that uplink's sessions
// the slot's attributes (prepend, communities, MED, graceful shutdown),
// and a last statement per uplink accepts a path that carries one of the
// uplink's live marks and strips every mark. A change is applied one of
// two ways:
//
//   - in place, while the table is small (fewer than inPlaceMaxRoutes
//     accepted routes): the slot keeps its mark, its statement changes (or
//     goes, for a withdrawal, leaving a dead mark on the path) and the
//     uplink's sessions are soft-reset outbound. The path does not change,
//     so no other ISP hears anything: a flapping uplink does not spread.
//   - by re-origination, with a full table: the slot gets a new mark, whose
//     statement is installed before the path carries it, and the path is
//     re-originated with it. The policy never changes what it does to a
//     path that exists, so nothing is walked: GoBGP sends the new path
//     through it and, where it now rejects the path, checks the old one
//     against the same policy and sends the withdrawal. The other ISPs get
//     an UPDATE identical to their last, which BGP routers take as no
//     change.
//
// Statements of marks no path carries any more are removed after the
// paths moved off them. The internal default carries its LOCAL_PREF the
// same way (node.asn:4:LP) and always changes by re-origination: only the
// internal peers hear it.
const (
	markLocal1        = 3 // node.asn:3:N, N a slot's mark
	defaultMarkLocal1 = 4 // node.asn:4:LP on our default to internal peers
	// inPlaceMaxRoutes is the table size (accepted routes, all sessions)
	// up to which changes are made in place: GoBGP's walk costs about 3.7
	// microseconds a route, some 37 ms here.
	inPlaceMaxRoutes = 10000
)

// exportMark is a live slot as the export policy sees it: its mark, its
// uplink and the attributes it gives.
type exportMark struct {
	id     uint32
	uplink string
	attrs  routing.Announcement // Prefix unset
}

// slotKey names one announcement: a site prefix toward an uplink.
type slotKey struct {
	uplink string
	prefix netip.Prefix
}

// slot is an announcement's mark and what it stands for; a dead slot's
// mark stays on the path with no statement, so export rejects it.
type slot struct {
	id    uint32
	attrs routing.Announcement
	live  bool
}

func (a slot) equal(b slot) bool { return a.id == b.id && a.live == b.live && a.attrs.Equal(b.attrs) }

// markTable holds the slots whose marks the originated paths carry.
type markTable struct {
	slots map[slotKey]slot
	next  uint32
}

// plan returns the slots that make want (normalized announcements per
// uplink) true, without changing m's slots (only its mark counter), and
// the uplinks whose sessions need an outbound soft reset (their slots
// changed in place). A slot of an uplink or prefix cfg no longer has is
// dropped.
func (m *markTable) plan(cfg *config.Config, want map[string][]routing.Announcement, inPlace bool) (map[slotKey]slot, map[string]bool) {
	wanted := map[slotKey]routing.Announcement{}
	for _, u := range cfg.Uplinks {
		for _, a := range want[u.Name] {
			wanted[slotKey{u.Name, a.Prefix}] = a
		}
	}
	next := make(map[slotKey]slot, len(m.slots)+len(wanted))
	reset := map[string]bool{}
	keys := slices.Collect(maps.Keys(m.slots))
	slices.SortFunc(keys, func(a, b slotKey) int {
		if c := strings.Compare(a.uplink, b.uplink); c != 0 {
			return c
		}
		return comparePrefix(a.prefix, b.prefix)
	})
	for _, k := range keys {
		cur := m.slots[k]
		if !slices.Contains(cfg.Site.Prefixes, k.prefix) || !slices.ContainsFunc(cfg.Uplinks, func(u config.Uplink) bool { return u.Name == k.uplink }) {
			continue
		}
		w, ok := wanted[k]
		switch {
		case ok && cur.live && cur.attrs.Equal(w), !ok && !cur.live:
			next[k] = cur
		case inPlace:
			next[k] = slot{id: cur.id, attrs: w, live: ok}
			reset[k.uplink] = true
		case ok:
			m.next++
			next[k] = slot{id: m.next, attrs: w, live: true}
		}
	}
	for _, u := range cfg.Uplinks { // in order: the same input, the same marks
		for _, a := range want[u.Name] {
			k := slotKey{u.Name, a.Prefix}
			if _, ok := next[k]; !ok && slices.Contains(cfg.Site.Prefixes, a.Prefix) { // a first announcement: a new mark either way
				m.next++
				next[k] = slot{id: m.next, attrs: a, live: true}
			}
		}
	}
	// A path that changes anyway sheds its dead marks.
	before, after := pathMarks(m.slots, false), pathMarks(next, false)
	for k, sl := range next {
		if !sl.live && !slices.Equal(before[k.prefix], after[k.prefix]) {
			delete(next, k)
		}
	}
	return next, reset
}

// pathMarks returns, per prefix, the sorted marks its path carries (with
// liveOnly, only the live ones).
func pathMarks(slots map[slotKey]slot, liveOnly bool) map[netip.Prefix][]uint32 {
	out := map[netip.Prefix][]uint32{}
	for k, sl := range slots {
		if liveOnly && !sl.live {
			continue
		}
		out[k.prefix] = append(out[k.prefix], sl.id)
	}
	for p := range out {
		slices.Sort(out[p])
	}
	return out
}

// originations returns what each path must carry with slots and, with
// defaultLP, the defaults to internal peers.
func originations(slots map[slotKey]slot, defaultLP uint32) map[netip.Prefix]origination {
	out := map[netip.Prefix]origination{}
	for p, ids := range pathMarks(slots, false) {
		out[p] = origination{marks: ids}
	}
	if defaultLP > 0 {
		out[defaultV6] = origination{defaultLP: defaultLP}
		out[defaultV4] = origination{defaultLP: defaultLP}
	}
	return out
}

// exportStateOf returns what the export policy must hold for the live
// slots of each of slotSets (a later set's version of a mark wins: an edit
// in place) and the paths of origs.
func exportStateOf(slotSets []map[slotKey]slot, origs ...map[netip.Prefix]origination) exportState {
	live := map[uint32]exportMark{}
	for _, set := range slotSets {
		for k, sl := range set {
			if sl.live {
				a := sl.attrs
				a.Prefix = netip.Prefix{}
				live[sl.id] = exportMark{id: sl.id, uplink: k.uplink, attrs: a}
			} else {
				delete(live, sl.id)
			}
		}
	}
	var st exportState
	for _, mk := range live {
		st.marks = append(st.marks, mk)
	}
	slices.SortFunc(st.marks, func(a, b exportMark) int { return int(a.id) - int(b.id) })
	lps := map[uint32]bool{}
	pfx := map[netip.Prefix]bool{}
	for _, orig := range origs {
		for p, o := range orig {
			if o.defaultLP > 0 {
				lps[o.defaultLP] = true
			} else {
				pfx[p] = true
			}
		}
	}
	st.sitePfx = sortedPrefixes(pfx)
	for lp := range lps {
		st.defaultLPs = append(st.defaultLPs, lp)
	}
	slices.Sort(st.defaultLPs)
	return st
}

// origination is what one locally originated path carries: the marks of
// the uplinks announcing a site prefix, or the LOCAL_PREF mark of a
// default.
type origination struct {
	marks     []uint32 // sorted
	defaultLP uint32
}

func (o origination) equal(p origination) bool {
	return o.defaultLP == p.defaultLP && slices.Equal(o.marks, p.marks)
}

// largeCommunities returns the marks as node asn's large communities.
func (o origination) largeCommunities(asn uint32) []routing.LargeCommunity {
	if o.defaultLP > 0 {
		return []routing.LargeCommunity{{Global: asn, Local1: defaultMarkLocal1, Local2: o.defaultLP}}
	}
	out := make([]routing.LargeCommunity, 0, len(o.marks))
	for _, id := range o.marks {
		out = append(out, routing.LargeCommunity{Global: asn, Local1: markLocal1, Local2: id})
	}
	return out
}

// markCommunity is the large community of mark id (or, with local1
// defaultMarkLocal1, of a default's LOCAL_PREF) as GoBGP's sets write it.
func markCommunity(asn, local1, id uint32) string {
	return fmt.Sprintf("^%d:%d:%d$", asn, local1, id)
}

// anyMarkRegexp matches every mark of node asn: what export strips.
func anyMarkRegexp(asn uint32) string {
	return fmt.Sprintf("^%d:[%d%d]:[0-9]+$", asn, markLocal1, defaultMarkLocal1)
}

// exportState is what the export policy must know of the paths that
// exist or are about to: the live marks, the site prefixes originated,
// the defaults' LOCAL_PREFs.
type exportState struct {
	marks      []exportMark
	sitePfx    []netip.Prefix // site prefixes with a path, besides the configured ones
	defaultLPs []uint32
}

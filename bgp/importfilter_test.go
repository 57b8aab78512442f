package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/config"
	bp "github.com/multihomed/multihomed/internal/bgppeer"
)

// filterCase is one route an ISP sends and whether GoBGP's import policy,
// as policy.go builds it, should take it (want). The test checks want
// against GoBGP, so a case that stops reaching the statement it is about
// shows; and importFilter against GoBGP, which is the point.
type filterCase struct {
	uplink string
	prefix string
	path   []bp.Segment
	want   bool
	why    string
}

func seq(asns ...uint32) bp.Segment     { return bp.Segment{Type: 2, ASNs: asns} }
func set(asns ...uint32) bp.Segment     { return bp.Segment{Type: 1, ASNs: asns} }
func cSeq(asns ...uint32) bp.Segment    { return bp.Segment{Type: 3, ASNs: asns} }
func cSet(asns ...uint32) bp.Segment    { return bp.Segment{Type: 4, ASNs: asns} }
func segs(s ...bp.Segment) []bp.Segment { return s }

// filterCases reach every accept and reject statement of an uplink's
// import policy; the ASNs 64496-64511 are documentation ASNs the lab
// profile allows, 65000 and 23456 are bogons it keeps. Routes that must
// pass the prefix checks are in 198.18.0.0/15 (benchmarking, RFC 2544),
// which filterTestConfig's bogon list leaves out.
var filterCases = []filterCase{
	{"isp-a", "0.0.0.0/0", segs(seq(64501)), true, "default-only uplink: the default"},
	{"isp-a", "198.19.100.0/24", segs(seq(64501)), false, "default-only uplink: anything else"},
	{"isp-a", "198.19.101.0/24", segs(seq(64501, 64510)), false, "default-only uplink: anything else"},

	{"isp-b", "0.0.0.0/0", segs(seq(64502, 64510)), true, "the default"},
	{"isp-b", "198.19.0.0/24", segs(seq(64502, 64510)), true, "a clean route"},
	{"isp-b", "198.19.1.0/24", segs(seq(64510)), false, "first AS is not the ISP's"},
	{"isp-b", "198.19.2.0/24", segs(set(64502, 64510)), false, "path opens with an AS_SET"},
	{"isp-b", "198.19.3.0/24", segs(seq(64502), set(64510, 65000)), false, "bogon ASN inside an AS_SET"},
	{"isp-b", "198.19.4.0/24", segs(seq(64502), set(64510)), false, "any AS_SET: GoBGP reads a set as AS 0, a bogon (RFC 7607)"},
	{"isp-b", "198.19.5.0/24", segs(seq(64502, 23456)), false, "AS_TRANS in the path"},
	{"isp-b", "198.19.6.0/24", segs(seq(64502, 65000, 64510)), false, "private ASN mid-path"},
	{"isp-b", "198.19.7.0/24", nil, false, "empty AS_PATH"},
	{"isp-b", "198.19.8.0/24", segs(seq(64502), cSeq(64510, 65000)), false, "confederation segment from an ISP (withdrawn)"},
	{"isp-b", "198.19.9.0/24", segs(seq(64502), cSet(64510, 65000, 64511)), false, "confederation set from an ISP (withdrawn)"},
	{"isp-b", "10.1.0.0/16", segs(seq(64502)), false, "bogon prefix"},
	{"isp-b", "198.51.100.0/25", segs(seq(64502)), false, "inside our own prefix"},
	{"isp-b", "198.51.100.0/24", segs(seq(64502)), false, "our own prefix"},
	{"isp-b", "192.0.2.0/25", segs(seq(64502)), false, "longer than /24"},
	{"isp-b", "203.0.113.0/24", segs(seq(64502, 64496)), true, "documentation space, allowed by the lab profile"},
	{"isp-b", "198.18.0.0/15", segs(seq(64502)), true, "a short prefix"},

	{"isp-c", "::/0", segs(seq(64503)), true, "the IPv6 default"},
	{"isp-c", "2001:db8:1::/48", segs(seq(64503, 64510)), true, "a clean /48"},
	{"isp-c", "2001:db8:1:100::/56", segs(seq(64503)), false, "longer than /48"},
	{"isp-c", "fc00:1::/48", segs(seq(64503)), false, "outside 2000::/3"},
	{"isp-c", "::/1", segs(seq(64503)), false, "outside 2000::/3, shorter than it"},
	{"isp-c", "2002:1::/32", segs(seq(64503)), false, "6to4, an IPv6 bogon"},
	{"isp-c", "2001:db8:face:1::/64", segs(seq(64503)), false, "inside our own prefix (and too long)"},
	{"isp-c", "2001:db8:face::/48", segs(seq(64503)), false, "our own prefix"},
	{"isp-c", "2001:db8:2::/48", segs(seq(64502)), false, "first AS is not the ISP's"},
	{"isp-c", "2001:db8:3::/48", segs(seq(64503, 4200000001)), false, "private 4-byte ASN"},
}

func filterTestConfig(t *testing.T, base netip.Addr) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test", fmt.Appendf(nil, `
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: [198.51.100.0/24, "2001:db8:face::/48"]}
bgp: {graceful_restart: false}
filters:
  # The defaults but 198.18.0.0/15, where the test's clean routes are.
  bogon_prefixes: ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "2001:2::/48", "2001:10::/28", "2002::/16", "3ffe::/16"]
uplinks:
  - name: isp-a
    interface: lo
    bgp: {peer_asn: 64501, neighbor: %s, local_address: %s, hold_time: 9s, connect_retry: 1s, import: default}
  - name: isp-b
    interface: lo
    bgp: {peer_asn: 64502, neighbor: %s, local_address: %s, hold_time: 9s, connect_retry: 1s, import: full}
  - name: isp-c
    interface: lo
    bgp: {peer_asn: 64503, neighbor: "::1", local_address: "::1", hold_time: 9s, connect_retry: 1s, import: full}
`, base.Next(), base, base.Next().Next(), base), nil)
	must(t, err)
	return cfg
}

// TestImportFilterMatchesGoBGP: three ISPs (default-only over IPv4, full
// over IPv4, full over IPv6) send routes that reach every statement of
// the import policy; for every route, the speaker's Accepted count says
// what GoBGP's RIB holds. After a reload that turns ISP-B to
// default-only, the recount says it again.
func TestImportFilterMatchesGoBGP(t *testing.T) {
	needIPv6Loopback(t)
	base := netip.MustParseAddr("127.3.0.1")
	port := freePort(t)
	addrs := map[string]netip.Addr{"isp-a": base.Next(), "isp-b": base.Next().Next(), "isp-c": netip.MustParseAddr("::1")}
	asns := map[string]uint32{"isp-a": 64501, "isp-b": 64502, "isp-c": 64503}
	peers := map[string]*bp.Peer{}
	for _, name := range []string{"isp-a", "isp-b", "isp-c"} {
		p, err := bp.Listen(netip.AddrPortFrom(addrs[name], uint16(port)).String(), asns[name], netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + len(peers))}), 9)
		must(t, err)
		t.Cleanup(p.Close)
		peers[name] = p
	}
	cfg := filterTestConfig(t, base)
	sp := New(Options{PeerPort: uint32(port), FirstAnnounceWait: time.Millisecond})
	ctx := context.Background()
	must(t, sp.Start(ctx, cfg))
	t.Cleanup(func() { sp.Stop(ctx) })
	for name, p := range peers {
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		if err := p.Accept(actx); err != nil {
			cancel()
			t.Fatalf("%s: %v", name, err)
		}
		cancel()
	}
	sent := map[string][]netip.Prefix{}
	for _, c := range filterCases {
		pfx := netip.MustParsePrefix(c.prefix)
		attrs := [][]byte{bp.Origin(0), bp.ASPathSegments(c.path...)}
		var msg []byte
		if pfx.Addr().Is4() {
			msg = bp.Update(nil, bp.Concat(append(attrs, bp.NextHop(addrs[c.uplink]))...), []netip.Prefix{pfx})
		} else {
			msg = bp.Update(nil, bp.Concat(append(attrs, bp.MPReach6(addrs[c.uplink], pfx))...), nil)
		}
		must(t, peers[c.uplink].Send(msg))
		sent[c.uplink] = append(sent[c.uplink], pfx)
	}
	check := func(when string, want func(filterCase) bool) {
		t.Helper()
		// GoBGP's RIB and our counts both settle behind the UPDATEs: wait
		// until the counts cover every uplink's RIB, then compare route by
		// route.
		var learned map[string][]netip.Prefix
		eventually(t, when+": counts settled", 20*time.Second, func() (bool, string) {
			var err error
			if learned, err = sp.Learned(); err != nil {
				return false, err.Error()
			}
			var diffs []string
			for _, c := range filterCases {
				pfx := netip.MustParsePrefix(c.prefix)
				inRIB := slices.Contains(learned[c.uplink], pfx)
				if inRIB != want(c) {
					diffs = append(diffs, fmt.Sprintf("%s %s in GoBGP's RIB: %v", c.uplink, c.prefix, inRIB))
				}
			}
			for _, s := range sp.Sessions() {
				if int(s.Accepted) != len(learned[s.Uplink]) {
					diffs = append(diffs, fmt.Sprintf("%s accepted %d, RIB %d", s.Uplink, s.Accepted, len(learned[s.Uplink])))
				}
			}
			return len(diffs) == 0, strings.Join(diffs, "; ")
		})
		sp.stateMu.Lock()
		defer sp.stateMu.Unlock()
		for _, c := range filterCases {
			pfx := netip.MustParsePrefix(c.prefix)
			counted := sp.limits[addrs[c.uplink]].counts.flags[keyOf(pfx)]&flagAccepted != 0
			if inRIB := slices.Contains(learned[c.uplink], pfx); counted != inRIB {
				t.Errorf("%s: %s %s (%s): counted accepted %v, GoBGP's RIB has it %v", when, c.uplink, c.prefix, c.why, counted, inRIB)
			}
		}
	}
	check("start", func(c filterCase) bool { return c.want })

	// The reload: ISP-B takes only the default from now on.
	next := filterTestConfig(t, base)
	next.Uplinks[1].BGP.Import = config.ImportDefault
	must(t, sp.Reconfigure(ctx, next))
	check("after ISP-B turned default-only", func(c filterCase) bool {
		if c.uplink == "isp-b" {
			return c.want && c.prefix == "0.0.0.0/0"
		}
		return c.want
	})
}

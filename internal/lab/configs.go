package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/multihomed/multihomed/health"
)

// frrNeighbor is one FRR neighbor statement group.
type frrNeighbor struct {
	addr     netip.Addr
	asn      int
	password string
	// defaultOriginate sends a default route of the neighbor's family.
	defaultOriginate bool
	// routeMapOut names an outbound route-map, if any.
	routeMapOut string
	// ttlSecurity enables GTSM (RFC 5082) for a directly connected peer.
	ttlSecurity bool
}

// frrBGPConf renders an FRR bgpd configuration.
func frrBGPConf(asn int, routerID netip.Addr, neighbors []frrNeighbor, networks []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n", asn, routerID)
	// FRR 8 refuses to send or accept eBGP routes without a policy (RFC
	// 8212); the lab ISPs are deliberately plain.
	b.WriteString(" no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n no bgp network import-check\n timers bgp 3 9\n")
	for _, n := range neighbors {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 2\n", n.addr, n.asn, n.addr)
		if n.password != "" {
			fmt.Fprintf(&b, " neighbor %s password %s\n", n.addr, n.password)
		}
		if n.ttlSecurity {
			fmt.Fprintf(&b, " neighbor %s ttl-security hops 1\n", n.addr)
		}
	}
	for _, fam := range []string{"ipv6", "ipv4"} {
		fmt.Fprintf(&b, " address-family %s unicast\n", fam)
		for _, nw := range networks {
			p := netip.MustParsePrefix(strings.Fields(nw)[0])
			if (fam == "ipv4") == p.Addr().Is4() {
				fmt.Fprintf(&b, "  network %s\n", nw)
			}
		}
		for _, n := range neighbors {
			if (fam == "ipv4") != n.addr.Is4() {
				continue
			}
			fmt.Fprintf(&b, "  neighbor %s activate\n", n.addr)
			if n.defaultOriginate {
				fmt.Fprintf(&b, "  neighbor %s default-originate\n", n.addr)
			}
			if n.routeMapOut != "" {
				fmt.Fprintf(&b, "  neighbor %s route-map %s out\n", n.addr, n.routeMapOut)
			}
		}
		b.WriteString(" exit-address-family\n")
	}
	b.WriteString(extra)
	return b.String()
}

// extraRoutes is ISP-A's "dirty table" for filter tests: about a thousand
// routes including the site's own prefixes, more-specifics of them, bogons,
// over-long prefixes and a path with a bogon ASN. Each network carries the
// route-map EXTRA, which tags it so ISP-A keeps it from the transit.
func extraRoutes(n int) []string {
	special := []string{
		SitePrefix6.String(),
		"2001:db8:face:8000::/49", // more-specific of the site
		"fd00:1234::/48",          // ULA: outside 2000::/3
		"2001:10::/28",            // ORCHID bogon
		"3ffe:1::/32",             // 6bone bogon
		"2001:db8:1000:1234::/64", // longer than /48
		SitePrefix4.String(),
		"198.51.100.128/25", // more-specific of the site
		"10.0.0.0/8",        // RFC 1918 bogon
		"203.0.113.0/25",    // longer than /24
	}
	var out []string
	for _, s := range special {
		out = append(out, s+" route-map EXTRA")
	}
	out = append(out, "2001:db8:1fff::/48 route-map EXTRA-BOGON-ASN")
	for i := 0; len(out) < n; i++ {
		out = append(out, fmt.Sprintf("2001:db8:%x::/48 route-map EXTRA", 0x1001+i))
	}
	return out
}

const extraRouteMaps = `bgp community-list standard LAB-EXTRA permit 64501:666
route-map EXTRA permit 10
 set community 64501:666
route-map EXTRA-BOGON-ASN permit 10
 set community 64501:666
 set as-path prepend 65000
route-map TO-TRANSIT deny 10
 match community LAB-EXTRA
route-map TO-TRANSIT permit 20
`

// birdISP is what differs between the lab ISPs in BIRD.
type birdISP struct {
	routerID       netip.Addr
	asn            int
	own6, own4     netip.Prefix // the ISP's space, link prefixes included
	local6, local4 netip.Addr   // on the edge link
	edge6, edge4   netip.Addr
	trLocal6       netip.Addr // on the transit link
	trLocal4       netip.Addr
	transit6       netip.Addr
	transit4       netip.Addr
	edgePassword   string
}

// ispBBIRD and ispABIRD are ISP-B's and ISP-A's BIRD settings.
func ispBBIRD(password string) birdISP {
	return birdISP{routerID: ISPBAddr4, asn: ASNISPB, own6: ISPBPrefix6, own4: netip.MustParsePrefix("198.18.2.0/24"),
		local6: ISPBAddr6, local4: ISPBAddr4, edge6: EdgeBAddr6, edge4: EdgeBAddr4,
		trLocal6: ISPBTrAddr6, trLocal4: ISPBTrAddr4, transit6: TransitBAddr6, transit4: TransitBAddr4, edgePassword: password}
}

func ispABIRD(password string) birdISP {
	return birdISP{routerID: ISPAAddr4, asn: ASNISPA, own6: ISPAPrefix6, own4: netip.MustParsePrefix("198.18.1.0/24"),
		local6: ISPAAddr6, local4: ISPAAddr4, edge6: EdgeAAddr6, edge4: EdgeAAddr4,
		trLocal6: ISPATrAddr6, trLocal4: ISPATrAddr4, transit6: TransitAAddr6, transit4: TransitAAddr4, edgePassword: password}
}

// birdISPConf renders an ISP's BIRD configuration: sessions with the edge
// (sending only a default route) and with the transit (sending everything
// but the default).
func birdISPConf(i birdISP) string {
	pw := ""
	if i.edgePassword != "" {
		pw = fmt.Sprintf("  password %q;\n", i.edgePassword)
	}
	return fmt.Sprintf(`router id %[1]s;
timeformat protocol iso long;
protocol device { }
protocol kernel kernel6 { ipv6 { export filter { if proto = "defaults6" then reject; accept; }; }; }
protocol kernel kernel4 { ipv4 { export filter { if proto = "defaults4" then reject; accept; }; }; }
protocol static own6 { ipv6; route %[2]s blackhole; }
protocol static own4 { ipv4; route %[15]s blackhole; }
protocol static defaults6 { ipv6; route ::/0 blackhole; }
protocol static defaults4 { ipv4; route 0.0.0.0/0 blackhole; }
protocol bgp edge6 {
  local %[3]s as %[4]d;
  neighbor %[5]s as %[6]d;
%[7]s  hold time 9; connect retry time 2; error wait time 1, 5;
  ipv6 { import all; export where net = ::/0; };
}
protocol bgp edge4 {
  local %[8]s as %[4]d;
  neighbor %[9]s as %[6]d;
%[7]s  hold time 9; connect retry time 2; error wait time 1, 5;
  ipv4 { import all; export where net = 0.0.0.0/0; };
}
protocol bgp transit6 {
  local %[10]s as %[4]d;
  neighbor %[11]s as %[12]d;
  hold time 9; connect retry time 2; error wait time 1, 5;
  ipv6 { import all; export where net != ::/0; };
}
protocol bgp transit4 {
  local %[13]s as %[4]d;
  neighbor %[14]s as %[12]d;
  hold time 9; connect retry time 2; error wait time 1, 5;
  ipv4 { import all; export where net != 0.0.0.0/0; };
}
`, i.routerID, i.own6, i.local6, i.asn, i.edge6, ASNEdge, pw,
		i.local4, i.edge4, i.trLocal6, i.transit6, ASNTransit, i.trLocal4, i.transit4, i.own4)
}

// birdISPProtocols maps an ISP's BGP neighbors to their BIRD protocols.
func birdISPProtocols(i birdISP) map[netip.Addr]string {
	return map[netip.Addr]string{i.edge6: "edge6", i.edge4: "edge4", i.transit6: "transit6", i.transit4: "transit4"}
}

// birdTransitConf renders the transit's BIRD configuration: sessions with
// both ISPs, everything to everyone, and the internet host's space.
func birdTransitConf() string {
	return fmt.Sprintf(`router id %[1]s;
timeformat protocol iso long;
protocol device { }
protocol kernel kernel6 { ipv6 { export all; }; }
protocol kernel kernel4 { ipv4 { export all; }; }
protocol static own6 { ipv6; route %[2]s blackhole; }
protocol static own4 { ipv4; route %[3]s blackhole; }
protocol bgp ispa6 { local %[4]s as %[5]d; neighbor %[6]s as %[7]d; hold time 9; connect retry time 2; error wait time 1, 5; ipv6 { import all; export all; }; }
protocol bgp ispa4 { local %[8]s as %[5]d; neighbor %[9]s as %[7]d; hold time 9; connect retry time 2; error wait time 1, 5; ipv4 { import all; export all; }; }
protocol bgp ispb6 { local %[10]s as %[5]d; neighbor %[11]s as %[12]d; hold time 9; connect retry time 2; error wait time 1, 5; ipv6 { import all; export all; }; }
protocol bgp ispb4 { local %[13]s as %[5]d; neighbor %[14]s as %[12]d; hold time 9; connect retry time 2; error wait time 1, 5; ipv4 { import all; export all; }; }
`, TransitInetAddr4, TransitPrefix6, TransitPrefix4,
		TransitAAddr6, ASNTransit, ISPATrAddr6, ASNISPA, TransitAAddr4, ISPATrAddr4,
		TransitBAddr6, ISPBTrAddr6, ASNISPB, TransitBAddr4, ISPBTrAddr4)
}

// EdgeConfig renders a multihomed configuration for the lab edge. extra is
// appended to each uplink's bgp block (indented YAML lines such as
// "      max_prefixes: 500"), keyed by uplink name.
func EdgeConfig(extra map[string]string) string {
	ex := map[string]string{}
	for k, v := range extra {
		if v != "" && !strings.HasSuffix(v, "\n") {
			v += "\n"
		}
		ex[k] = v
	}
	return edgeHead("multihomed lab edge", EdgeLANAddr4) + "uplinks:\n" +
		uplinkBGP("isp-a", "eth-a", ASNISPA, ISPAAddr6, EdgeAAddr6, ISPAAddr4, EdgeAAddr4, ex["isp-a"]) +
		uplinkBGP("isp-b", "eth-b", ASNISPB, ISPBAddr6, EdgeBAddr6, ISPBAddr4, EdgeBAddr4, ex["isp-b"])
}

// edgeHead is the top of every lab edge's configuration: a comment naming
// the lab, the node (AS ASNEdge, routerID) and the site's two prefixes.
func edgeHead(lab string, routerID netip.Addr) string {
	return fmt.Sprintf(`# %[1]s (AS%[2]d): documentation prefixes and ASNs.
profile: lab
node:
  router_id: %[3]s
  asn: %[2]d
site:
  prefixes:
    - %[4]s
    - %[5]s
`, lab, ASNEdge, routerID, SitePrefix6, SitePrefix4)
}

// uplinkBGP is one entry of an edge's uplinks list with its eBGP sessions
// (IPv6 and IPv4, 9 s hold time, 2 s connect retry: fast enough for the
// lab); extra is appended below the bgp block, one indented YAML line each.
func uplinkBGP(name, dev string, peerASN int, nbr6, local6, nbr4, local4 netip.Addr, extra string) string {
	return fmt.Sprintf(`  - name: %s
    interface: %s
    bgp:
      peer_asn: %d
      neighbor: %s
      local_address: %s
      neighbor_ipv4: %s
      local_address_ipv4: %s
      hold_time: 9s
      connect_retry: 2s
%s`, name, dev, peerASN, nbr6, local6, nbr4, local4, extra)
}

// Probe profiles for the edge's health block.
const (
	// ProfileFast probes every 50 ms with the lab-tuned timeout (75 ms
	// ceiling, fall 2), suited to targets about 1 ms away.
	ProfileFast = "fast"
	// ProfileFastDocumented is docs/health.md's fast profile: 50 ms probes,
	// timeout 200 ms, fall 3 (the adaptive timeout does the tuning).
	ProfileFastDocumented = "fast-doc"
	// ProfileDefault uses the documented defaults (1 s probes).
	ProfileDefault = "default"
)

// HealthBlock returns an uplink-level health block (to append to an
// uplink's extra lines in EdgeConfig) probing the internet host over ICMPv6
// and ICMP through the uplink.
func HealthBlock(profile string) string {
	timing := ""
	switch profile {
	case ProfileFast:
		timing = "      interval: 50ms\n      timeout: 75ms\n      fall: 2\n"
	case ProfileFastDocumented:
		timing = "      interval: 50ms\n      timeout: 200ms\n      fall: 3\n"
	}
	return fmt.Sprintf("    health:\n%s      min_up: 1\n      targets: [\"icmp://%s\", \"icmp://%s\"]\n", timing, InetAddr6, InetAddr4)
}

// ControllerBlock returns top-level controller settings for the profile and
// a state directory. With noBackoff the hold-down never grows (hold_down_max
// equals hold_down), so repeated measurements start from the same state.
func ControllerBlock(profile, stateDir string, noBackoff bool) string {
	hold := "10s"
	if profile == ProfileFast || profile == ProfileFastDocumented {
		hold = "1s"
	}
	maxHold := "60s"
	if noBackoff {
		maxHold = hold
	}
	return fmt.Sprintf("controller:\n  startup_wait: 15s\n  hold_down: %s\n  hold_down_max: %s\n  drain_grace: 3s\n  state_dir: %s\n", hold, maxHold, stateDir)
}

// ScenarioConfig is the edge configuration for failure scenarios: both
// uplinks probed with the profile, ISP-B one prepend longer so that inbound
// traffic prefers ISP-A while it is healthy (every fault on ISP-A then hits
// both directions), optionally the iBGP core router.
//
// With the fast profile ISP-A's RTT thresholds sit below the probe timeout
// (degraded from 40 ms p95, back below 20 ms; the targets are about 1 ms
// away), so that added latency can make it degraded rather than only ever
// lost; ISP-B keeps the defaults, so a loaded machine's slow probes do not
// make the backup look degraded.
func ScenarioConfig(profile, stateDir string, ibgp, noBackoff bool) string {
	return ScenarioConfigAt(profile, stateDir, ibgp, noBackoff, 0)
}

// ScenarioConfigAt is ScenarioConfig for probe targets targetDelay
// further away (Lab.DelayTargets): every RTT threshold, ISP-B's defaults
// included, is raised by targetDelay, so that the distance alone makes no
// uplink degraded.
func ScenarioConfigAt(profile, stateDir string, ibgp, noBackoff bool, targetDelay time.Duration) string {
	h := HealthBlock(profile)
	ha, hb := h, h
	rtt := func(enter, leave time.Duration) string {
		return fmt.Sprintf("      degraded_rtt_enter: %v\n      degraded_rtt_leave: %v\n", enter+targetDelay, leave+targetDelay)
	}
	if profile == ProfileFast || profile == ProfileFastDocumented {
		ha += rtt(40*time.Millisecond, 20*time.Millisecond)
	} else if targetDelay > 0 {
		ha += rtt(health.DefaultRTTEnter, health.DefaultRTTLeave)
	}
	if targetDelay > 0 {
		hb += rtt(health.DefaultRTTEnter, health.DefaultRTTLeave)
	}
	cfg := EdgeConfig(map[string]string{"isp-a": ha, "isp-b": "      prepend: 1\n" + hb}) + ControllerBlock(profile, stateDir, noBackoff)
	if ibgp {
		cfg += EdgeIBGP()
	}
	return cfg
}

// EdgeIBGP returns the top-level ibgp block peering with the core router.
func EdgeIBGP() string {
	return fmt.Sprintf("ibgp:\n  peers:\n    - {neighbor: \"%s\", local_address: \"%s\", hold_time: 9s, connect_retry: 2s}\n    - {neighbor: %s, local_address: %s, hold_time: 9s, connect_retry: 2s}\n", LANAddr6, EdgeLANAddr6, LANAddr4, EdgeLANAddr4)
}

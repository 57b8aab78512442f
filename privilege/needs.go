package privilege

import (
	"fmt"
	"slices"
	"strings"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
)

// Uses describes what the daemon will do that the kernel guards with a
// capability. It is plain data, so that Needs can be tested without a
// configuration.
type Uses struct {
	// EgressTable is the routing table the egress defaults go into; the
	// daemon always writes routes, so CAP_NET_ADMIN is always needed.
	EgressTable int
	// Probes are the uplinks with health probes, in configuration order.
	Probes []ProbeUse
	// Listeners are the TCP ports the daemon listens on.
	Listeners []Listener
	// EBPFNPTv6 is set when the eBPF NPTv6 datapath will be loaded.
	EBPFNPTv6 bool
}

// ProbeUse is what one uplink's probes do. Every probed uplink gets its own
// routing table and policy rule (CAP_NET_ADMIN).
type ProbeUse struct {
	Uplink string
	// ICMP is set when a target is probed with ICMP echo, over a raw
	// socket (CAP_NET_RAW).
	ICMP bool
	// Mark is set when probe sockets carry a firewall mark (SO_MARK, which
	// CAP_NET_ADMIN allows).
	Mark bool
}

// Listener is one TCP listening socket.
type Listener struct {
	// Key is the configuration key that sets it, such as bgp.listen_port.
	Key  string
	Port uint16
}

// UsesOf describes what cfg makes the daemon do.
func UsesOf(cfg *config.Config) Uses {
	u := Uses{EgressTable: cfg.Egress.Table}
	// PA mode's kernel backend, NAT44, return-path marks and conntrack
	// flushes are all CAP_NET_ADMIN, which is always needed; only the eBPF
	// backend (the default) needs more.
	u.EBPFNPTv6 = cfg.Site.Mode == config.ModePA && cfg.NPTv6.Backend == config.NPTv6EBPF
	for _, up := range cfg.Uplinks {
		if up.Health == nil {
			continue
		}
		p := ProbeUse{Uplink: up.Name, Mark: up.Health.Mark != 0}
		for _, t := range up.Health.Targets {
			if t.Kind == health.KindICMP {
				p.ICMP = true
			}
		}
		u.Probes = append(u.Probes, p)
	}
	if cfg.BGP.ListenPort > 0 {
		u.Listeners = append(u.Listeners, Listener{Key: "bgp.listen_port", Port: uint16(cfg.BGP.ListenPort)})
	}
	if cfg.API.TCP != nil {
		u.Listeners = append(u.Listeners, Listener{Key: "api.tcp.address", Port: cfg.API.TCP.Address.Port()})
	}
	if cfg.Metrics.Address.IsValid() {
		u.Listeners = append(u.Listeners, Listener{Key: "metrics.address", Port: cfg.Metrics.Address.Port()})
	}
	return u
}

// Need is one capability the daemon needs and every reason, in the words
// an operator would look for in the configuration.
type Need struct {
	Cap Cap
	Why []string
}

// Needs returns the capabilities u requires, ordered by capability number.
// portStart is the first port that needs no CAP_NET_BIND_SERVICE
// (UnprivilegedPortStart). Port 0 (any free port) never needs it.
//
// Deliberately absent: SO_BINDTODEVICE on a fresh socket needs no
// capability since Linux 5.7, and the TCP-MD5 and GTSM socket options
// (TCP_MD5SIG, IP_MINTTL) need none at all.
func Needs(u Uses, portStart int) []Need {
	why := map[Cap][]string{}
	add := func(c Cap, format string, args ...any) { why[c] = append(why[c], fmt.Sprintf(format, args...)) }

	add(NetAdmin, "egress default routes in table %d", u.EgressTable)
	var probed, icmp, marked []string
	for _, p := range u.Probes {
		probed = append(probed, p.Uplink)
		if p.ICMP {
			icmp = append(icmp, p.Uplink)
		}
		if p.Mark {
			marked = append(marked, p.Uplink)
		}
	}
	if len(probed) > 0 {
		add(NetAdmin, "probe routing tables and rules for %s", uplinks(probed))
	}
	if len(marked) > 0 {
		add(NetAdmin, "SO_MARK on probe sockets of %s", uplinks(marked))
	}
	if len(icmp) > 0 {
		add(NetRaw, "ICMP probes on %s", uplinks(icmp))
	}
	for _, l := range u.Listeners {
		if l.Port != 0 && int(l.Port) < portStart {
			add(NetBindService, "%s port %d is below %d", l.Key, l.Port, portStart)
		}
	}
	if u.EBPFNPTv6 {
		add(NetAdmin, "attaching the eBPF NPTv6 programs")
		add(BPF, "loading the eBPF NPTv6 programs and maps")
		add(Perfmon, "the verifier's pointer checks on the eBPF NPTv6 programs")
	}

	out := make([]Need, 0, len(why))
	for c, w := range why {
		out = append(out, Need{Cap: c, Why: w})
	}
	slices.SortFunc(out, func(a, b Need) int { return int(a.Cap) - int(b.Cap) })
	return out
}

// uplinks names a list of uplinks: "uplink isp-a" or "uplinks isp-a, isp-b".
func uplinks(names []string) string {
	if len(names) == 1 {
		return "uplink " + names[0]
	}
	return "uplinks " + strings.Join(names, ", ")
}

package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/multihomed/multihomed/health"
)

// Defaults for the controller, egress and iBGP sections.
const (
	DefaultStartupWait       = 30 * time.Second
	DefaultControllerHold    = 10 * time.Second
	DefaultControllerHoldMax = 5 * time.Minute
	DefaultDrainGrace        = 60 * time.Second
	DefaultResync            = 30 * time.Second
	DefaultStateDir          = "/var/lib/multihomed"
	DefaultHistorySize       = 1000
	DefaultEgressTable       = 254 // main
	DefaultEgressProtocol    = 78  // 77 is fib's probe tables'
	DefaultEgressMetric      = 100
	DefaultDegradedPrepend   = 3
	DefaultLocalPrefUp       = 200
	DefaultLocalPrefDegraded = 100
)

func (c *checker) egress(r rawEgress) Egress {
	e := Egress{Mode: EgressFailover, Table: DefaultEgressTable, Protocol: DefaultEgressProtocol, Metric: DefaultEgressMetric}
	switch EgressMode(r.Mode) {
	case "", EgressFailover:
	case EgressECMP:
		e.Mode = EgressECMP
	default:
		c.add("egress.mode", "%q is not a mode; use failover or ecmp", r.Mode)
	}
	if r.Table != nil {
		if t := *r.Table; t < 1 || t > math.MaxInt32 || t == 255 || t == 253 {
			c.add("egress.table", "%d is reserved or out of range; use 254 (main) or a table of your own", t)
		} else {
			e.Table = int(t)
		}
	}
	if r.Protocol != nil {
		if p := *r.Protocol; p < 5 || p > 255 || p == 77 {
			c.add("egress.protocol", "%d is reserved or out of range; use 5-255 except 77 (the probe tables' own), a number no other routing daemon uses (see /etc/iproute2/rt_protos)", p)
		} else {
			e.Protocol = int(p)
		}
	}
	if r.Metric != nil {
		if m := *r.Metric; m < 1 || m > 1<<30 {
			c.add("egress.metric", "%d is out of range 1-1073741824", m)
		} else {
			e.Metric = int(m)
		}
	}
	return e
}

func (c *checker) controller(r rawController) Controller {
	out := Controller{
		StartupWait: c.duration("controller.startup_wait", r.StartupWait, DefaultStartupWait),
		HoldDown:    c.duration("controller.hold_down", r.HoldDown, DefaultControllerHold),
		HoldDownMax: c.duration("controller.hold_down_max", r.HoldDownMax, DefaultControllerHoldMax),
		DrainGrace:  c.duration("controller.drain_grace", r.DrainGrace, DefaultDrainGrace),
		Resync:      c.duration("controller.resync", r.Resync, DefaultResync),
		StateDir:    r.StateDir,
		HistorySize: DefaultHistorySize,
		FailStatic:  true,
	}
	if out.StateDir == "" {
		out.StateDir = DefaultStateDir
	}
	if out.HoldDownMax < out.HoldDown {
		c.add("controller.hold_down_max", "%s is below hold_down %s; use at least hold_down", out.HoldDownMax, out.HoldDown)
	}
	if out.Resync < 100*time.Millisecond {
		c.add("controller.resync", "%s is too short; use 1s or more", out.Resync)
	}
	if r.HistorySize != nil {
		if n := *r.HistorySize; n < 1 || n > 1_000_000 {
			c.add("controller.history_size", "%d is out of range 1-1000000", n)
		} else {
			out.HistorySize = int(n)
		}
	}
	if r.FailStatic != nil {
		out.FailStatic = *r.FailStatic
	}
	return out
}

func (c *checker) ibgp(r rawIBGP, node Node) IBGP {
	out := IBGP{LocalPrefUp: DefaultLocalPrefUp, LocalPrefDegraded: DefaultLocalPrefDegraded}
	lp := func(path string, v *int64, def uint32) uint32 {
		if v == nil {
			return def
		}
		if *v < 1 || *v > math.MaxUint32 {
			c.add(path, "%d is out of range 1-4294967295", *v)
			return def
		}
		return uint32(*v)
	}
	out.LocalPrefUp = lp("ibgp.local_pref_up", r.LocalPrefUp, out.LocalPrefUp)
	out.LocalPrefDegraded = lp("ibgp.local_pref_degraded", r.LocalPrefDegraded, out.LocalPrefDegraded)
	if out.LocalPrefDegraded >= out.LocalPrefUp {
		c.add("ibgp.local_pref_degraded", "%d is not below local_pref_up %d; internal routers would not prefer a healthy edge", out.LocalPrefDegraded, out.LocalPrefUp)
	}
	seen := map[netip.Addr]int{}
	for i, rp := range r.Peers {
		base := fmt.Sprintf("ibgp.peers[%d]", i)
		p := IBGPPeer{
			Neighbor:     c.addr(base+".neighbor", rp.Neighbor, true),
			LocalAddress: c.addr(base+".local_address", rp.LocalAddress, false),
			Password:     NewSecret(rp.Password),
			HoldTime:     c.duration(base+".hold_time", rp.HoldTime, DefaultHoldTime),
			ConnectRetry: c.duration(base+".connect_retry", rp.ConnectRetry, DefaultConnectRetry),
		}
		if j, dup := seen[p.Neighbor]; dup && p.Neighbor.IsValid() {
			c.add(base+".neighbor", "%s is already ibgp.peers[%d]", p.Neighbor, j)
		}
		seen[p.Neighbor] = i
		if p.HoldTime != 0 && p.HoldTime < 3*time.Second {
			c.add(base+".hold_time", "%s is below the 3s minimum; use 3s or more", p.HoldTime)
		}
		if len(rp.Password) > maxMD5KeyLen {
			c.add(base+".password", "longer than the %d bytes Linux accepts for a TCP-MD5 key", maxMD5KeyLen)
		}
		out.Peers = append(out.Peers, p)
	}
	return out
}

// uplinkExtras validates the non-BGP keys of uplinks[i].
func (c *checker) uplinkExtras(i int, ru rawUplink, u *Uplink) {
	base := fmt.Sprintf("uplinks[%d]", i)
	u.Gateway = c.addr(base+".gateway", ru.Gateway, false)
	u.GatewayIPv4 = c.addr(base+".gateway_ipv4", ru.GatewayIPv4, false)
	if u.Gateway.IsValid() && !u.Gateway.Is6() {
		c.add(base+".gateway", "%s is not IPv6; put IPv4 next hops in gateway_ipv4", u.Gateway)
	}
	if u.GatewayIPv4.IsValid() && !u.GatewayIPv4.Is4() {
		c.add(base+".gateway_ipv4", "%s is not IPv4", u.GatewayIPv4)
	}
	// By default the egress next hop is the ISP router we peer with.
	if !u.Gateway.IsValid() && u.BGP.Neighbor.Is6() {
		u.Gateway = u.BGP.Neighbor
	}
	if !u.GatewayIPv4.IsValid() {
		if u.BGP.Neighbor.Is4() {
			u.GatewayIPv4 = u.BGP.Neighbor
		} else if u.BGP.NeighborIPv4.IsValid() {
			u.GatewayIPv4 = u.BGP.NeighborIPv4
		}
	}
	u.Weight = 1
	if ru.Weight != nil {
		if w := *ru.Weight; w < 1 || w > 256 {
			c.add(base+".weight", "%d is out of range 1-256", w)
		} else {
			u.Weight = int(w)
		}
	}
	u.Degraded.Prepend = DefaultDegradedPrepend
	if p := ru.Degraded.Prepend; p != nil {
		if *p < 0 || *p > MaxPrepend {
			c.add(base+".degraded.prepend", "%d is out of range 0-%d", *p, MaxPrepend)
		} else {
			u.Degraded.Prepend = uint8(*p)
		}
	}
	for j, s := range ru.Degraded.Communities {
		cm, err := ParseCommunity(s)
		if err != nil {
			c.add(fmt.Sprintf("%s.degraded.communities[%d]", base, j), "%v", err)
			continue
		}
		u.Degraded.Communities = append(u.Degraded.Communities, cm)
	}
	if m := ru.Degraded.MED; m != nil {
		if *m < 0 || *m > math.MaxUint32 {
			c.add(base+".degraded.med", "%d is out of range 0-4294967295", *m)
		} else {
			v := uint32(*m)
			u.Degraded.MED = &v
		}
	}
	switch DownAction(ru.DownAction) {
	case "", DownWithdraw:
		u.DownAction = DownWithdraw
	case DownPrepend:
		u.DownAction = DownPrepend
	default:
		c.add(base+".down_action", "%q is not an action; use withdraw or prepend", ru.DownAction)
	}
	if ru.Health != nil {
		u.Health = c.health(base+".health", i, *ru.Health)
	}
}

// health converts and validates an uplink's health block. Problems from
// package health carry paths relative to the block; they are prefixed here.
func (c *checker) health(base string, index int, r rawHealth) *health.Config {
	h := &health.Config{
		MinUp: r.MinUp, Rise: r.Rise, Fall: r.Fall, Window: r.Window,
		LossEnter: r.LossEnter, LossLeave: r.LossLeave,
		Mark: r.Mark, Table: r.Table, NoBindDevice: r.NoBindDevice,
		Interval: c.duration(base+".interval", r.Interval, 0),
		Timeout:  c.duration(base+".timeout", r.Timeout, 0),
		RTTEnter: c.duration(base+".degraded_rtt_enter", r.RTTEnter, 0),
		RTTLeave: c.duration(base+".degraded_rtt_leave", r.RTTLeave, 0),
		SourceV6: c.addr(base+".source_v6", r.SourceV6, false),
		SourceV4: c.addr(base+".source_v4", r.SourceV4, false),
	}
	for j, item := range r.Targets {
		path := fmt.Sprintf("%s.targets[%d]", base, j)
		switch v := item.(type) {
		case string:
			t, err := health.ParseTarget(v)
			if err != nil {
				c.add(path, "%v", err)
				continue
			}
			h.Targets = append(h.Targets, t)
		case map[string]any:
			c.problems = append(c.problems, unknownKeys(path, v, reflect.TypeOf(rawTarget{}))...)
			var rt rawTarget
			dec, _ := mapstructure.NewDecoder(&mapstructure.DecoderConfig{Result: &rt, WeaklyTypedInput: true})
			if err := dec.Decode(v); err != nil {
				c.add(path, "wrong type: %s", oneLine(err.Error()))
				continue
			}
			t := health.Target{
				Kind: health.Kind(rt.Kind), URL: rt.URL, ExpectStatus: rt.ExpectStatus, BodyContains: rt.BodyContains,
				FollowRedirects: rt.FollowRedirects, TLSServerName: rt.TLSServerName, CAFile: rt.CAFile,
				Query: rt.Query, QueryType: rt.QueryType, ExpectAnswer: rt.ExpectAnswer,
				Rise: rt.Rise, Fall: rt.Fall, Window: rt.Window,
				Address:  c.addr(path+".address", rt.Address, false),
				Interval: c.duration(path+".interval", rt.Interval, 0),
				Timeout:  c.duration(path+".timeout", rt.Timeout, 0),
			}
			if rt.Port < 0 || rt.Port > 65535 {
				c.add(path+".port", "%d is not a port (0-65535)", rt.Port)
			} else {
				t.Port = uint16(rt.Port)
			}
			h.Targets = append(h.Targets, t)
		default:
			c.add(path, "write a target as a string such as icmp://2001:db8:9000:1::10, or as a map with kind and address")
		}
	}
	h.ApplyDefaults(index)
	for _, err := range h.Validate() {
		path, msg := splitProblem(err)
		if path == "" {
			c.add(base, "%s", msg)
		} else {
			c.add(base+"."+path, "%s", msg)
		}
	}
	return h
}

// splitProblem splits "targets[2].interval: message" into path and message.
func splitProblem(err error) (string, string) {
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && !strings.ContainsAny(s[:i], " \"") {
		return s[:i], s[i+2:]
	}
	return "", s
}

// healthUnique checks health marks and tables across uplinks.
func (c *checker) healthUnique(uplinks []Uplink) {
	var cfgs []health.Config
	var idx []int
	for i, u := range uplinks {
		if u.Health != nil {
			cfgs = append(cfgs, *u.Health)
			idx = append(idx, i)
		}
	}
	for _, err := range health.CheckUnique(cfgs) {
		var e error = err
		msg := e.Error()
		// CheckUnique numbers uplinks among those with health blocks; map
		// back to config indexes.
		for k := len(idx) - 1; k >= 0; k-- {
			msg = strings.ReplaceAll(msg, fmt.Sprintf("uplinks[%d]", k), fmt.Sprintf("uplinks[#%d]", idx[k]))
		}
		msg = strings.ReplaceAll(msg, "uplinks[#", "uplinks[")
		p, m := splitProblem(errors.New(msg))
		c.add(p, "%s", m)
	}
}

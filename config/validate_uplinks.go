package config

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
)

var (
	uplinkNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)
	ifaceNameRe  = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,15}$`)
)

// uplinks checks every uplink and what must differ between them: names,
// neighbors, health marks and tables.
func (c *checker) uplinks(r []rawUplink, cfg *Config) []Uplink {
	if len(r) == 0 {
		c.add("uplinks", "missing; configure at least one uplink (two or more to be multihomed)")
	}
	var out []Uplink
	names := map[string]int{}
	neighbors := map[netip.Addr]string{}
	n := c.limit("uplinks", len(r), MaxUplinks, "a site has a few ISPs; remove uplinks")
	for i, ru := range r[:n] {
		base := fmt.Sprintf("uplinks[%d]", i)
		u := Uplink{Name: ru.Name, Interface: ru.Interface}
		c.uplinkIdentity(base, i, ru, names)
		// BGP is optional in PA mode: an ISP may still feed a default.
		if cfg.Site.Mode != ModePA || hasBGP(ru) {
			u.BGP = c.uplinkBGP(base+".bgp", ru.BGP, cfg.Node, neighbors)
		}
		c.uplinkExtras(base, ru, &u)
		if cfg.Site.Mode == ModePA {
			c.paUplink(base, ru, &u, cfg.Site, cfg.Profile)
		}
		if ru.Health != nil {
			u.Health = c.health(base+".health", i, ru.Name, *ru.Health)
		}
		out = append(out, u)
	}
	c.healthUnique(out)
	return out
}

// uplinkIdentity checks an uplink's name and interface.
func (c *checker) uplinkIdentity(base string, i int, ru rawUplink, names map[string]int) {
	switch {
	case ru.Name == "":
		c.add(base+".name", "missing; name the uplink, such as isp-a")
	case !uplinkNameRe.MatchString(ru.Name):
		c.add(base+".name", "%q must be 1-31 lowercase letters, digits or dashes, starting with a letter or digit", ru.Name)
	default:
		if j, dup := names[ru.Name]; dup {
			c.add(base+".name", "%q is already the name of uplinks[%d]; names must be unique", ru.Name, j)
		}
		names[ru.Name] = i
	}
	switch {
	case ru.Interface == "":
		c.add(base+".interface", "missing; name the network device facing the ISP, such as eth1")
	case !ifaceNameRe.MatchString(ru.Interface):
		c.add(base+".interface", "%q is not a Linux interface name (1-15 characters, no spaces or slashes)", ru.Interface)
	}
}

// uplinkExtras checks the egress and degraded-state keys of an uplink. It
// runs after the BGP block: the gateways default to the neighbors.
func (c *checker) uplinkExtras(base string, ru rawUplink, u *Uplink) {
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
	u.Weight = inRange(c, base+".weight", ru.Weight, 1, 256, 1)
	u.Degraded.Prepend = inRange[uint8](c, base+".degraded.prepend", ru.Degraded.Prepend, 0, MaxPrepend, DefaultDegradedPrepend)
	u.Degraded.Communities = c.communities(base+".degraded.communities", ru.Degraded.Communities)
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
}

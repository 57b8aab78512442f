package config

import "time"

// node checks the speaker's identity.
func (c *checker) node(r rawNode) Node {
	var n Node
	n.RouterID = c.addr("node.router_id", r.RouterID, true)
	if n.RouterID.IsValid() && !n.RouterID.Is4() {
		c.add("node.router_id", "%q is not IPv4; the BGP identifier is a 32-bit value written as an IPv4 address (RFC 6286)", r.RouterID)
	}
	if n.RouterID.Is4() && n.RouterID.IsUnspecified() {
		c.add("node.router_id", "0.0.0.0 is not a valid BGP identifier")
	}
	n.ASN = c.asn("node.asn", r.ASN, true)
	return n
}

// bgpGlobal checks the speaker-wide BGP keys.
func (c *checker) bgpGlobal(r rawBGP) BGPGlobal {
	g := BGPGlobal{ListenPort: -1, GracefulRestart: true}
	if r.ListenPort != nil {
		lp := *r.ListenPort
		if lp != -1 && (lp < 1 || lp > 65535) {
			c.add("bgp.listen_port", "%d is not a port; use 1-65535, or -1 to only dial out", lp)
		} else {
			g.ListenPort = int32(lp)
		}
	}
	if r.GracefulRestart != nil {
		g.GracefulRestart = *r.GracefulRestart
	}
	g.RestartTime = c.duration("bgp.restart_time", r.RestartTime, DefaultRestartTime)
	if g.RestartTime > 4095*time.Second {
		c.add("bgp.restart_time", "%s exceeds the 4095s the capability can carry (RFC 4724)", g.RestartTime)
	}
	return g
}

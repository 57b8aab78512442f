package config

import (
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Defaults of the ibgp section.
const (
	DefaultLocalPrefUp       = 200
	DefaultLocalPrefDegraded = 100
)

// ibgp checks the internal routers that receive the site's default.
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
	n := c.limit("ibgp.peers", len(r.Peers), MaxIBGPPeers, "peer with route reflectors instead of every router")
	for i, rp := range r.Peers[:n] {
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

package config

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
)

// Defaults of the BGP session keys, for uplinks and iBGP peers alike.
const (
	DefaultHoldTime     = 90 * time.Second
	DefaultKeepalive    = 30 * time.Second
	DefaultConnectRetry = 5 * time.Second
	DefaultRestartTime  = 120 * time.Second
	// DefaultMaxPrefixesSmall applies to import none and default: an ISP
	// asked for a default route has no reason to send more.
	DefaultMaxPrefixesSmall = 100
	// DefaultMaxPrefixesFull applies to import full, per address family:
	// above today's IPv4 table with headroom.
	DefaultMaxPrefixesFull = 1_500_000
	// maxMD5KeyLen is Linux's TCP_MD5SIG_MAXKEYLEN.
	maxMD5KeyLen = 80
)

// uplinkBGP checks an uplink's bgp block. neighbors maps every neighbor
// address seen so far to the uplink that has it.
func (c *checker) uplinkBGP(bp string, rb rawUplinkBGP, node Node, neighbors map[netip.Addr]string) UplinkBGP {
	var b UplinkBGP
	b.PeerASN = c.asn(bp+".peer_asn", rb.PeerASN, true)
	if b.PeerASN != 0 && b.PeerASN == node.ASN {
		c.add(bp+".peer_asn", "%d equals node.asn; sessions with ISPs are eBGP, so the ISP's ASN must differ", b.PeerASN)
	}
	b.Neighbor = c.addr(bp+".neighbor", rb.Neighbor, true)
	b.LocalAddress = c.addr(bp+".local_address", rb.LocalAddress, false)
	if b.Neighbor.IsValid() && b.LocalAddress.IsValid() && b.Neighbor.Is4() != b.LocalAddress.Is4() {
		c.add(bp+".local_address", "%s is not the same address family as neighbor %s", b.LocalAddress, b.Neighbor)
	}
	b.NeighborIPv4 = c.addr(bp+".neighbor_ipv4", rb.NeighborIPv4, false)
	b.LocalAddressIPv4 = c.addr(bp+".local_address_ipv4", rb.LocalAddressIPv4, false)
	if b.NeighborIPv4.IsValid() {
		if !b.NeighborIPv4.Is4() {
			c.add(bp+".neighbor_ipv4", "%s is not IPv4", b.NeighborIPv4)
		}
		if b.Neighbor.Is4() {
			c.add(bp+".neighbor_ipv4", "neighbor is already IPv4; neighbor_ipv4 adds an IPv4 session beside an IPv6 neighbor")
		}
	}
	if b.LocalAddressIPv4.IsValid() {
		if !b.NeighborIPv4.IsValid() {
			c.add(bp+".local_address_ipv4", "set without neighbor_ipv4; add neighbor_ipv4 or remove this key")
		} else if !b.LocalAddressIPv4.Is4() {
			c.add(bp+".local_address_ipv4", "%s is not IPv4", b.LocalAddressIPv4)
		}
	}
	base := strings.TrimSuffix(bp, ".bgp")
	for _, pair := range []struct {
		key string
		a   netip.Addr
	}{{"neighbor", b.Neighbor}, {"neighbor_ipv4", b.NeighborIPv4}} {
		if !pair.a.IsValid() {
			continue
		}
		if other, dup := neighbors[pair.a]; dup {
			c.add(bp+"."+pair.key, "%s is already a neighbor of %s; each session needs its own neighbor address", pair.a, other)
		}
		neighbors[pair.a] = base
	}

	switch {
	case rb.Password != "" && rb.PasswordFile != "":
		c.add(bp+".password", "set together with password_file; keep one")
	case rb.PasswordFile != "":
		b.PasswordFile = rb.PasswordFile
		data, err := readSecretFile(rb.PasswordFile)
		if err != nil {
			c.add(bp+".password_file", "%v", err)
			break
		}
		pw := strings.TrimRight(string(data), "\r\n")
		if pw == "" {
			c.add(bp+".password_file", "%s is empty; put the TCP-MD5 key in it", rb.PasswordFile)
		}
		b.Password = NewSecret(pw)
	case rb.Password != "":
		b.Password = NewSecret(rb.Password)
	}
	if len(b.Password.Reveal()) > maxMD5KeyLen {
		c.add(bp+".password", "longer than the %d bytes Linux accepts for a TCP-MD5 key", maxMD5KeyLen)
	}

	b.HoldTime = c.duration(bp+".hold_time", rb.HoldTime, DefaultHoldTime)
	b.Keepalive = c.duration(bp+".keepalive", rb.Keepalive, DefaultKeepalive)
	if rb.Keepalive == "" && rb.HoldTime != "" {
		b.Keepalive = b.HoldTime / 3
	}
	if b.HoldTime != 0 && b.HoldTime < 3*time.Second {
		c.add(bp+".hold_time", "%s is below the 3s minimum (RFC 4271 section 4.2); use 0s to disable or 3s or more", b.HoldTime)
	}
	if b.HoldTime%time.Second != 0 || b.Keepalive%time.Second != 0 {
		c.add(bp+".hold_time", "BGP timers are whole seconds; round hold_time and keepalive")
	}
	if b.HoldTime > 65535*time.Second {
		c.add(bp+".hold_time", "%s exceeds 65535s", b.HoldTime)
	}
	if b.HoldTime != 0 && b.Keepalive >= b.HoldTime {
		c.add(bp+".keepalive", "%s is not below hold_time %s; use a third of it", b.Keepalive, b.HoldTime)
	}
	b.ConnectRetry = c.duration(bp+".connect_retry", rb.ConnectRetry, DefaultConnectRetry)
	if b.ConnectRetry < time.Second {
		c.add(bp+".connect_retry", "%s is below 1s; use 1s or more", b.ConnectRetry)
	}
	b.TTLSecurity = rb.TTLSecurity

	switch ImportMode(rb.Import) {
	case "", ImportDefault:
		b.Import = ImportDefault
	case ImportNone, ImportFull:
		b.Import = ImportMode(rb.Import)
	default:
		c.add(bp+".import", "%q is not an import mode; use none, default or full", rb.Import)
	}
	b.MaxPrefixes = DefaultMaxPrefixesSmall
	if b.Import == ImportFull {
		b.MaxPrefixes = DefaultMaxPrefixesFull
	}
	if rb.MaxPrefixes != nil {
		if *rb.MaxPrefixes < 1 || *rb.MaxPrefixes > math.MaxUint32 {
			c.add(bp+".max_prefixes", "%d is out of range; every session needs a limit of at least 1", *rb.MaxPrefixes)
		} else {
			b.MaxPrefixes = uint32(*rb.MaxPrefixes)
		}
	}

	b.Communities = c.communities(bp+".communities", rb.Communities)
	b.LargeCommunities = c.largeCommunities(bp+".large_communities", rb.LargeCommunities)
	if rb.MED != nil {
		if *rb.MED < 0 || *rb.MED > math.MaxUint32 {
			c.add(bp+".med", "%d is out of range 0-4294967295", *rb.MED)
		} else {
			m := uint32(*rb.MED)
			b.MED = &m
		}
	}
	if rb.Prepend < 0 || rb.Prepend > MaxPrepend {
		c.add(bp+".prepend", "%d is out of range 0-%d; longer paths buy nothing and some ISPs drop them", rb.Prepend, MaxPrepend)
	} else {
		b.Prepend = uint8(rb.Prepend)
	}
	return b
}

// communities parses a list of standard communities.
func (c *checker) communities(path string, list []string) []Community {
	var out []Community
	n := c.limit(path, len(list), MaxCommunities, "remove communities")
	for j, s := range list[:n] {
		cm, err := ParseCommunity(s)
		if err != nil {
			c.add(fmt.Sprintf("%s[%d]", path, j), "%v", err)
			continue
		}
		out = append(out, cm)
	}
	return out
}

// largeCommunities parses a list of large communities.
func (c *checker) largeCommunities(path string, list []string) []LargeCommunity {
	var out []LargeCommunity
	n := c.limit(path, len(list), MaxLargeCommunities, "remove large communities")
	for j, s := range list[:n] {
		lc, err := ParseLargeCommunity(s)
		if err != nil {
			c.add(fmt.Sprintf("%s[%d]", path, j), "%v", err)
			continue
		}
		out = append(out, lc)
	}
	return out
}

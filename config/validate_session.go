package config

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/multihomed/multihomed/routing"
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
		if c.opts.noFiles {
			c.fileRef(bp+".password_file", rb.PasswordFile)
			break
		}
		data, warning, err := readSecretFile(rb.PasswordFile, c.profile)
		if err != nil {
			c.add(bp+".password_file", "%v", err)
			break
		}
		if warning != "" {
			c.note(bp+".password_file", "%s", warning)
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

	b.HoldTime, b.Keepalive, b.ConnectRetry = c.sessionTimers(bp, rb.HoldTime, rb.Keepalive, rb.ConnectRetry)
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
	// How long a session that exceeded max_prefixes stays down before it
	// is tried again (0: until an operator resets it).
	b.MaxPrefixRestart = c.duration(bp+".max_prefix_restart", rb.MaxPrefixRestart, DefaultMaxPrefixRestart)

	b.Communities = c.communities(bp+".communities", rb.Communities)
	b.LargeCommunities = c.largeCommunities(bp+".large_communities", rb.LargeCommunities)
	for j, lc := range b.LargeCommunities {
		if node.ASN != 0 && lc.Global == node.ASN && lc.Local1 >= ReservedLargeLocal1Min && lc.Local1 <= ReservedLargeLocal1Max {
			c.add(fmt.Sprintf("%s.large_communities[%d]", bp, j), "%s is reserved: the speaker uses node.asn:%d-%d:* to mark its own routes and strips them on export; use another first local value",
				lc, ReservedLargeLocal1Min, ReservedLargeLocal1Max)
		}
	}
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

// sessionTimers checks the timers of one BGP session, with an ISP or an
// internal router alike. An empty keepalive is a third of hold_time when
// that is set, else DefaultKeepalive.
func (c *checker) sessionTimers(base, rawHold, rawKeepalive, rawRetry string) (hold, keepalive, retry time.Duration) {
	hold = c.duration(base+".hold_time", rawHold, DefaultHoldTime)
	keepalive = c.duration(base+".keepalive", rawKeepalive, DefaultKeepalive)
	if rawKeepalive == "" && rawHold != "" {
		// Derived, so whole seconds whatever hold_time is.
		keepalive = (hold / 3).Truncate(time.Second)
	}
	if hold != 0 && hold < 3*time.Second {
		c.add(base+".hold_time", "%s is below the 3s minimum (RFC 4271 section 4.2); use 0s to disable or 3s or more", hold)
	}
	if hold%time.Second != 0 || keepalive%time.Second != 0 {
		c.add(base+".hold_time", "BGP timers are whole seconds; round hold_time and keepalive")
	}
	// The OPEN message carries the hold time in 16 bits: 65536s would go
	// on the wire as 0, which turns keepalives off.
	if hold > 65535*time.Second {
		c.add(base+".hold_time", "%s exceeds 65535s, the most the OPEN message carries (RFC 4271 section 4.2); use 65535s or less", rawHold)
	}
	if hold != 0 && keepalive >= hold {
		c.add(base+".keepalive", "%s is not below hold_time %s; use a third of it", keepalive, hold)
	}
	retry = c.duration(base+".connect_retry", rawRetry, DefaultConnectRetry)
	if retry < time.Second {
		c.add(base+".connect_retry", "%s is below 1s; use 1s or more", retry)
	}
	return hold, keepalive, retry
}

// communities parses a list of standard communities.
func (c *checker) communities(path string, list []string) []routing.Community {
	return parseList(c, path, list, MaxCommunities, "remove communities", routing.ParseCommunity)
}

// largeCommunities parses a list of large communities.
func (c *checker) largeCommunities(path string, list []string) []routing.LargeCommunity {
	return parseList(c, path, list, MaxLargeCommunities, "remove large communities", routing.ParseLargeCommunity)
}

// parseList parses each of at most most items with parse, reporting each
// one that fails at path[index]; fix says what to do about too many.
func parseList[T any](c *checker, path string, list []string, most int, fix string, parse func(string) (T, error)) []T {
	var out []T
	n := c.limit(path, len(list), most, fix)
	for j, s := range list[:n] {
		v, err := parse(s)
		if err != nil {
			c.add(fmt.Sprintf("%s[%d]", path, j), "%v", err)
			continue
		}
		out = append(out, v)
	}
	return out
}

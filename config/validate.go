package config

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/multihomed/multihomed/routing"
)

// Defaults for keys left out of the file.
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

var (
	uplinkNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)
	ifaceNameRe  = regexp.MustCompile(`^[A-Za-z0-9_.@:-]{1,15}$`)
)

// checker collects problems under a path.
type checker struct{ problems []Problem }

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) addr(path, s string, required bool) netip.Addr {
	if s == "" {
		if required {
			c.add(path, "missing; set an IP address")
		}
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		c.add(path, "%q is not an IP address", s)
		return netip.Addr{}
	}
	if a.Zone() != "" {
		c.add(path, "%q has a zone; use a global address", s)
		return netip.Addr{}
	}
	return a.Unmap()
}

func (c *checker) prefix(path, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		c.add(path, "%q is not a prefix; write it as address/length, such as 2001:db8:face::/48", s)
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		c.add(path, "%q has host bits set; did you mean %s?", s, p.Masked())
		return netip.Prefix{}, false
	}
	return p, true
}

func (c *checker) duration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.Atoi(s); nerr == nil {
			c.add(path, "%q has no unit; write %ss", s, s)
		} else {
			c.add(path, "%q is not a duration; write it like 90s or 1m30s", s)
		}
		return def
	}
	if d < 0 {
		c.add(path, "%s is negative", s)
		return def
	}
	return d
}

func (c *checker) asn(path string, v int64, required bool) uint32 {
	switch {
	case v == 0 && required:
		c.add(path, "missing; set an AS number (1 to 4294967294)")
	case v < 0 || v > math.MaxUint32-1:
		c.add(path, "%d is out of range; AS numbers run from 1 to 4294967294", v)
	case v == 23456:
		c.add(path, "23456 is AS_TRANS (RFC 6793), not a real AS; use your 4-byte ASN")
	default:
		return uint32(v)
	}
	return 0
}

func (r rawConfig) validate() (*Config, []Problem) {
	c := &checker{}
	cfg := &Config{}

	cfg.Log = Log{Level: strings.ToLower(r.Log.Level), Format: strings.ToLower(r.Log.Format)}
	switch cfg.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		c.add("log.level", "%q is not a level; use debug, info, warn or error", r.Log.Level)
	}
	switch cfg.Log.Format {
	case "text", "json":
	default:
		c.add("log.format", "%q is not a format; use text or json", r.Log.Format)
	}

	switch Profile(r.Profile) {
	case "", ProfileProduction:
		cfg.Profile = ProfileProduction
	case ProfileLab:
		cfg.Profile = ProfileLab
	default:
		c.add("profile", "%q is not a profile; use production or lab", r.Profile)
	}

	// Node.
	cfg.Node.RouterID = c.addr("node.router_id", r.Node.RouterID, true)
	if cfg.Node.RouterID.IsValid() && !cfg.Node.RouterID.Is4() {
		c.add("node.router_id", "%q is not IPv4; the BGP identifier is a 32-bit value written as an IPv4 address (RFC 6286)", r.Node.RouterID)
	}
	if cfg.Node.RouterID.Is4() && cfg.Node.RouterID.IsUnspecified() {
		c.add("node.router_id", "0.0.0.0 is not a valid BGP identifier")
	}
	cfg.Node.ASN = c.asn("node.asn", r.Node.ASN, true)

	// Filters, before the site so site checks can use them.
	cfg.Filters = c.filters(r.Filters, cfg.Profile)

	// Site.
	if len(r.Site.Prefixes) == 0 {
		c.add("site.prefixes", "missing; list the prefixes the site owns, such as 2001:db8:face::/48")
	}
	for i, s := range r.Site.Prefixes {
		path := fmt.Sprintf("site.prefixes[%d]", i)
		p, ok := c.prefix(path, s)
		if !ok {
			continue
		}
		switch {
		case p.Addr().Is6() && p.Bits() > 48:
			c.add(path, "%s is longer than /48; ISPs filter IPv6 longer than /48 (announce the covering /48)", p)
			continue
		case p.Addr().Is4() && p.Bits() > 24:
			c.add(path, "%s is longer than /24; ISPs filter IPv4 longer than /24 (announce the covering /24)", p)
			continue
		}
		if cfg.Profile == ProfileProduction && IsDocumentation(p) {
			c.add(path, "%s is documentation space that no ISP accepts; use your own prefix, or set profile: lab for a lab", p)
		}
		for j, q := range cfg.Site.Prefixes {
			if q.Overlaps(p) {
				c.add(path, "%s overlaps site.prefixes[%d] %s; list each block once", p, j, q)
			}
		}
		cfg.Site.Prefixes = append(cfg.Site.Prefixes, p)
	}

	// BGP global.
	cfg.BGP.ListenPort = -1
	if r.BGP.ListenPort != nil {
		lp := *r.BGP.ListenPort
		if lp != -1 && (lp < 1 || lp > 65535) {
			c.add("bgp.listen_port", "%d is not a port; use 1-65535, or -1 to only dial out", lp)
		} else {
			cfg.BGP.ListenPort = int32(lp)
		}
	}
	cfg.BGP.GracefulRestart = true
	if r.BGP.GracefulRestart != nil {
		cfg.BGP.GracefulRestart = *r.BGP.GracefulRestart
	}
	cfg.BGP.RestartTime = c.duration("bgp.restart_time", r.BGP.RestartTime, DefaultRestartTime)
	if cfg.BGP.RestartTime > 4095*time.Second {
		c.add("bgp.restart_time", "%s exceeds the 4095s the capability can carry (RFC 4724)", cfg.BGP.RestartTime)
	}

	// Uplinks.
	if len(r.Uplinks) == 0 {
		c.add("uplinks", "missing; configure at least one uplink (two or more to be multihomed)")
	}
	names := map[string]int{}
	neighbors := map[netip.Addr]string{}
	for i, ru := range r.Uplinks {
		u := c.uplink(i, ru, cfg, names, neighbors)
		c.uplinkExtras(i, ru, &u)
		cfg.Uplinks = append(cfg.Uplinks, u)
	}
	c.healthUnique(cfg.Uplinks)
	cfg.Egress = c.egress(r.Egress)
	for i, u := range cfg.Uplinks {
		if u.Health != nil && u.Health.Table == cfg.Egress.Table {
			c.add("egress.table", "%d is uplinks[%d]'s probe table (health.table); the site's defaults there would take that uplink's probes elsewhere: use another table for one of them", cfg.Egress.Table, i)
		}
	}
	cfg.Controller = c.controller(r.Controller)
	cfg.IBGP = c.ibgp(r.IBGP, cfg.Node)
	cfg.API = c.api(r.API)
	cfg.Metrics = c.metrics(r.Metrics)
	// Every site prefix must be announceable somewhere.
	for i, p := range cfg.Site.Prefixes {
		found := false
		for _, u := range cfg.Uplinks {
			for _, s := range u.BGP.Sessions() {
				if s.Neighbor.IsValid() && s.Neighbor.Is4() == p.Addr().Is4() {
					found = true
				}
			}
		}
		if !found && len(cfg.Uplinks) > 0 {
			fam, key := "IPv6", "neighbor"
			if p.Addr().Is4() {
				fam, key = "IPv4", "neighbor_ipv4"
			}
			c.add(fmt.Sprintf("site.prefixes[%d]", i), "%s is %s but no uplink has an %s session to announce it on; set uplinks[].bgp.%s", p, fam, fam, key)
		}
	}
	return cfg, c.problems
}

func (c *checker) filters(r rawFilters, profile Profile) Filters {
	var f Filters
	prefixes := r.BogonPrefixes
	if prefixes == nil {
		prefixes = defaultBogonPrefixes
	}
	for i, s := range prefixes {
		p, ok := c.prefix(fmt.Sprintf("filters.bogon_prefixes[%d]", i), s)
		if !ok {
			continue
		}
		if profile == ProfileLab && IsDocumentation(p) {
			continue
		}
		f.BogonPrefixes = append(f.BogonPrefixes, p)
	}
	asns := r.BogonASNs
	if asns == nil {
		asns = defaultBogonASNs
	}
	for i, s := range asns {
		path := fmt.Sprintf("filters.bogon_asns[%d]", i)
		lo, hi, found := strings.Cut(s, "-")
		if !found {
			hi = lo
		}
		a, errA := strconv.ParseUint(strings.TrimSpace(lo), 10, 32)
		b, errB := strconv.ParseUint(strings.TrimSpace(hi), 10, 32)
		if errA != nil || errB != nil || a > b {
			c.add(path, "%q is not an ASN or range; write 23456 or 64496-131071", s)
			continue
		}
		f.BogonASNs = append(f.BogonASNs, ASNRange{uint32(a), uint32(b)})
	}
	if profile == ProfileLab {
		f.BogonASNs = subtractASNs(f.BogonASNs, labASNs)
	}
	return f
}

func (c *checker) uplink(i int, ru rawUplink, cfg *Config, names map[string]int, neighbors map[netip.Addr]string) Uplink {
	base := fmt.Sprintf("uplinks[%d]", i)
	u := Uplink{Name: ru.Name, Interface: ru.Interface}
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

	bp := base + ".bgp"
	rb := ru.BGP
	b := &u.BGP
	b.PeerASN = c.asn(bp+".peer_asn", rb.PeerASN, true)
	if b.PeerASN != 0 && b.PeerASN == cfg.Node.ASN {
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

	b.MaxPrefixRestart = c.duration(bp+".max_prefix_restart", rb.MaxPrefixRestart, DefaultMaxPrefixRestart)

	for j, s := range rb.Communities {
		cm, err := routing.ParseCommunity(s)
		if err != nil {
			c.add(fmt.Sprintf("%s.communities[%d]", bp, j), "%v", err)
			continue
		}
		b.Communities = append(b.Communities, cm)
	}
	for j, s := range rb.LargeCommunities {
		lc, err := routing.ParseLargeCommunity(s)
		if err != nil {
			c.add(fmt.Sprintf("%s.large_communities[%d]", bp, j), "%v", err)
			continue
		}
		b.LargeCommunities = append(b.LargeCommunities, lc)
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
	return u
}

// readSecretFile reads a small regular file. Devices, FIFOs and large files
// are refused: reading /dev/zero or a pipe would hang validation.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file; put the key in a plain file", path)
	}
	if st.Size() > 4096 {
		return nil, fmt.Errorf("%s is %d bytes; a TCP-MD5 key file holds one key of at most %d bytes", path, st.Size(), maxMD5KeyLen)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %v", err)
	}
	return data, nil
}

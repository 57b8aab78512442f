package config

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// maxNPTPrefixLen is the longest prefix NPTv6 translates (RFC 6296 section
// 3.5: the checksum adjustment goes into a word of bits 48..63, or of the
// first non-0xFFFF word after the prefix, which must lie inside a /64).
const maxNPTPrefixLen = 64

// ulaRange is RFC 4193's Unique Local Address space.
var ulaRange = netip.MustParsePrefix("fc00::/7")

// tsigAlgorithms are the TSIG algorithms accepted; hmac-md5 and hmac-sha1
// are left out on purpose (RFC 8945 section 6).
var tsigAlgorithms = []string{"hmac-sha256", "hmac-sha384", "hmac-sha512"}

// dnsLabelRe is one DNS label as host names use them (RFC 1123), with the
// underscore service labels allow.
var dnsLabelRe = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)

// bindSecretRe finds the secret in a BIND key file (tsig-keygen's output).
var bindSecretRe = regexp.MustCompile(`secret\s+"([^"]*)"`)

// mode checks site.mode.
func (c *checker) mode(s string) Mode {
	switch Mode(strings.ToLower(s)) {
	case "", ModePI:
		return ModePI
	case ModePA:
		return ModePA
	}
	c.add("site.mode", "%q is not a mode; use pi (the site owns its prefixes) or pa (ULA inside, one PA prefix per ISP)", s)
	return ModePI
}

// piOnly reports the PA keys of a PI-mode file: they would do nothing.
func (c *checker) piOnly(r rawConfig) {
	const fix = "is PA mode's; set site.mode: pa, or remove it"
	if r.Site.InternalPrefix != "" {
		c.add("site.internal_prefix", fix)
	}
	if r.Site.InternalPrefixIPv4 != "" {
		c.add("site.internal_prefix_ipv4", fix)
	}
	for i, u := range r.Uplinks {
		if u.PAPrefix != "" {
			c.add(fmt.Sprintf("uplinks[%d].pa_prefix", i), fix)
		}
		if u.NAT44 != "" {
			c.add(fmt.Sprintf("uplinks[%d].nat44", i), fix)
		}
	}
	if r.NPTv6 != (rawNPTv6{}) {
		c.add("nptv6", fix)
	}
	if r.DNS != nil {
		c.add("dns", fix)
	}
}

// paSite checks the site section in PA mode: the internal prefixes instead
// of announced ones.
func (c *checker) paSite(r rawSite, profile Profile) Site {
	s := Site{Mode: ModePA}
	if len(r.Prefixes) > 0 {
		c.add("site.prefixes", "PA mode announces nothing; remove site.prefixes (or use site.mode: pi for a site that owns its prefixes)")
	}
	if r.InternalPrefix == "" {
		c.add("site.internal_prefix", "missing; PA mode needs the site's ULA prefix, such as fd7a:5e1d:9c00::/48")
	} else if p, ok := c.nptPrefix("site.internal_prefix", r.InternalPrefix); ok {
		if profile == ProfileProduction && !ulaRange.Contains(p.Addr()) {
			c.add("site.internal_prefix", "%s is not a ULA (fc00::/7, RFC 4193); hosts inside need addresses no ISP routes: generate a random fdXX::/48 (or set profile: lab for a lab)", p)
		} else {
			s.InternalPrefix = p
		}
	}
	if r.InternalPrefixIPv4 != "" {
		if p, ok := c.prefix("site.internal_prefix_ipv4", r.InternalPrefixIPv4); ok {
			if !p.Addr().Is4() {
				c.add("site.internal_prefix_ipv4", "%s is not IPv4; the IPv6 inside prefix is internal_prefix", p)
			} else {
				s.InternalPrefixIPv4 = p
			}
		}
	}
	return s
}

// nptPrefix parses an IPv6 prefix NPTv6 can translate.
func (c *checker) nptPrefix(path, s string) (netip.Prefix, bool) {
	p, ok := c.prefix(path, s)
	switch {
	case !ok:
		return netip.Prefix{}, false
	case !p.Addr().Is6() || p.Addr().Is4In6():
		c.add(path, "%s is not IPv6; NPTv6 maps IPv6 prefixes only", p)
	case p.Bits() == 0 || p.Bits() > maxNPTPrefixLen:
		c.add(path, "%s: NPTv6 translates prefixes of /1 to /%d (RFC 6296 section 3.5)", p, maxNPTPrefixLen)
	default:
		return p, true
	}
	return netip.Prefix{}, false
}

// hasBGP reports whether the file has a bgp block for an uplink.
func hasBGP(ru rawUplink) bool { return !reflect.ValueOf(ru.BGP).IsZero() }

// paUplink checks an uplink's PA keys and refuses the announcement keys,
// which do nothing in PA mode. It runs after the bgp block and the extras.
func (c *checker) paUplink(base string, ru rawUplink, u *Uplink, site Site, profile Profile) {
	const noAnnounce = "PA mode announces nothing; remove it"
	if hasBGP(ru) {
		b := ru.BGP
		if len(b.Communities) > 0 {
			c.add(base+".bgp.communities", noAnnounce)
		}
		if len(b.LargeCommunities) > 0 {
			c.add(base+".bgp.large_communities", noAnnounce)
		}
		if b.MED != nil {
			c.add(base+".bgp.med", noAnnounce)
		}
		if b.Prepend != 0 {
			c.add(base+".bgp.prepend", noAnnounce)
		}
	}
	if !reflect.ValueOf(ru.Degraded).IsZero() {
		c.add(base+".degraded", noAnnounce+" (a degraded uplink's egress is still less preferred)")
	}
	if DownAction(ru.DownAction) == DownPrepend {
		c.add(base+".down_action", "prepend announces; PA mode announces nothing: remove it")
	}
	if !hasBGP(ru) && ru.Health == nil {
		c.add(base, "has neither bgp nor health; nothing would tell whether this ISP works: add a health block (probes through the uplink)")
	}
	if !u.Gateway.IsValid() {
		c.add(base+".gateway", "missing; without a BGP neighbor the IPv6 egress next hop must be given (the ISP router on the link)")
	}

	if ru.PAPrefix == "" {
		c.add(base+".pa_prefix", "missing; give the prefix this ISP delegated to the site, such as 2001:db8:1001::/48")
	} else if p, ok := c.nptPrefix(base+".pa_prefix", ru.PAPrefix); ok {
		in := site.InternalPrefix
		switch {
		case profile == ProfileProduction && IsDocumentation(p):
			c.add(base+".pa_prefix", "%s is documentation space that no ISP routes; use the prefix your ISP delegated, or set profile: lab for a lab", p)
		case ulaRange.Contains(p.Addr()):
			c.add(base+".pa_prefix", "%s is a ULA; the PA prefix is the ISP's global prefix the site's addresses are translated into", p)
		case profile == ProfileProduction && unroutable(p) != "":
			c.add(base+".pa_prefix", "%s %s, which ISPs drop; use the prefix your ISP delegated, or set profile: lab for a lab", p, unroutable(p))
		case in.IsValid() && in.Overlaps(p):
			c.add(base+".pa_prefix", "%s overlaps site.internal_prefix %s; the translator maps between disjoint prefixes", p, in)
		case in.IsValid() && p.Bits() > in.Bits():
			// RFC 6296 section 3.1 extends the shorter prefix with zeroes:
			// internal addresses with any of the extra bits set would have
			// no translation through this uplink.
			c.add(base+".pa_prefix", "%s is longer than site.internal_prefix %s: part of the site would be unreachable through this uplink; use an internal prefix of /%d or longer, or ask the ISP for a /%d", p, in, p.Bits(), in.Bits())
		default:
			u.PAPrefix = p
		}
	}

	switch ru.NAT44 {
	case "":
	case "interface":
		u.NAT44 = &NAT44{}
	default:
		a, err := netip.ParseAddr(ru.NAT44)
		if err != nil || !a.Is4() {
			c.add(base+".nat44", "%q is neither an IPv4 address nor interface; give the ISP's address flows take, or interface for the uplink's own (DHCP, PPPoE)", ru.NAT44)
			break
		}
		u.NAT44 = &NAT44{Source: a}
	}
	if u.NAT44 != nil {
		if !site.InternalPrefixIPv4.IsValid() {
			c.add(base+".nat44", "set but site.internal_prefix_ipv4 is not: name the inside IPv4 prefix to translate")
		}
		if !u.GatewayIPv4.IsValid() {
			c.add(base+".gateway_ipv4", "missing; NAT44 needs the uplink's IPv4 egress next hop")
		}
	}
}

// paCross checks what must hold between PA uplinks: disjoint PA prefixes,
// and IPv4 NATed wherever it may leave.
func (c *checker) paCross(site Site, uplinks []Uplink) {
	var listed []indexedPrefix
	nat := false
	for i, u := range uplinks {
		if u.PAPrefix.IsValid() {
			listed = append(listed, indexedPrefix{i, u.PAPrefix})
		}
		nat = nat || u.NAT44 != nil
	}
	// overlaps names paths as path[index]; the index is the uplink's.
	for _, e := range pairsOverlapping(listed) {
		c.add(fmt.Sprintf("uplinks[%d].pa_prefix", e.later.index), "%s overlaps uplinks[%d].pa_prefix %s; each ISP delegates its own prefix", e.later.prefix, e.earlier.index, e.earlier.prefix)
	}
	if site.InternalPrefixIPv4.IsValid() && !nat {
		c.add("site.internal_prefix_ipv4", "set but no uplink has nat44: the inside IPv4 prefix would leave untranslated; set uplinks[].nat44")
	}
}

// overlapPair is a prefix that overlaps an earlier one in its list.
type overlapPair struct{ earlier, later indexedPrefix }

// pairsOverlapping returns every pair of list that overlaps (a handful of
// uplinks: quadratic is fine), the later entry second.
func pairsOverlapping(list []indexedPrefix) []overlapPair {
	var out []overlapPair
	for j := range list {
		for i := range j {
			if list[i].prefix.Overlaps(list[j].prefix) {
				out = append(out, overlapPair{list[i], list[j]})
				break
			}
		}
	}
	return out
}

// nptv6 checks the nptv6 section (PA mode).
func (c *checker) nptv6(r rawNPTv6) NPTv6 {
	n := NPTv6{Backend: NPTv6EBPF, PinPath: r.PinPath}
	switch NPTv6Backend(strings.ToLower(r.Backend)) {
	case "", NPTv6EBPF:
	case NPTv6Kernel:
		n.Backend = NPTv6Kernel
		if r.PinPath != "" {
			c.add("nptv6.pin_path", "is the ebpf backend's; remove it with backend: kernel")
		}
	default:
		c.add("nptv6.backend", "%q is not a backend; use ebpf (tc programs) or kernel (ip6tables NPT)", r.Backend)
	}
	if r.PinPath != "" && !strings.HasPrefix(r.PinPath, "/") {
		c.add("nptv6.pin_path", "%q is not an absolute path; give a directory on a bpffs mount, such as /sys/fs/bpf/multihomed/nptv6", r.PinPath)
	}
	return n
}

// dns checks the dns section (PA mode).
func (c *checker) dns(r rawDNS, site Site) *DNS {
	d := &DNS{Zone: strings.TrimSpace(r.Zone), KeyName: strings.TrimSpace(r.TSIG.Name), SecretFile: r.TSIG.SecretFile}
	if d.Zone == "" {
		c.add("dns.zone", "missing; give the zone the hosts are published in, such as site.example")
	} else if !isDomainName(d.Zone) {
		c.add("dns.zone", "%q is not a domain name", r.Zone)
	}
	switch {
	case r.Server == "":
		c.add("dns.server", "missing; give the zone's primary as an address or address:port (not a name: updates must not depend on DNS)")
	default:
		if ap, err := netip.ParseAddrPort(r.Server); err == nil && ap.Port() != 0 {
			d.Server = ap
		} else if a, err := netip.ParseAddr(r.Server); err == nil && a.Zone() == "" {
			d.Server = netip.AddrPortFrom(a.Unmap(), 53)
		} else {
			c.add("dns.server", "%q is not an address or address:port; write 192.0.2.53, [2001:db8::53]:53 or 192.0.2.53:5353", r.Server)
		}
	}
	if d.KeyName == "" {
		c.add("dns.tsig.name", "missing; give the TSIG key's name as the server's key statement has it")
	} else if !isDomainName(d.KeyName) {
		c.add("dns.tsig.name", "%q is not a key name (a domain name such as mh-update)", r.TSIG.Name)
	}
	d.Algorithm = strings.ToLower(strings.TrimSuffix(r.TSIG.Algorithm, "."))
	if d.Algorithm == "" {
		d.Algorithm = tsigAlgorithms[0]
	}
	if !slices.Contains(tsigAlgorithms, d.Algorithm) {
		c.add("dns.tsig.algorithm", "%q is not accepted; use %s", r.TSIG.Algorithm, strings.Join(tsigAlgorithms, ", "))
	}
	c.tsigSecret(r.TSIG.SecretFile, d)
	d.TTL = c.duration("dns.ttl", r.TTL, DefaultDNSTTL)
	if d.TTL < time.Second || d.TTL%time.Second != 0 || d.TTL > 24*time.Hour {
		c.add("dns.ttl", "%s: use whole seconds between 1s and 24h (short: resolvers keep a failed uplink's address until it expires)", d.TTL)
	}
	if len(r.Hosts) == 0 {
		c.add("dns.hosts", "missing; list the published hosts (name and internal address), or remove the dns section")
	}
	n := c.limit("dns.hosts", len(r.Hosts), MaxDNSHosts, "publish fewer names from one site")
	seen := map[string]int{}
	for i, rh := range r.Hosts[:n] {
		base := fmt.Sprintf("dns.hosts[%d]", i)
		h := DNSHost{Name: strings.TrimSpace(rh.Name)}
		key := strings.ToLower(strings.TrimSuffix(h.Name, "."))
		switch {
		case h.Name == "":
			c.add(base+".name", `missing; give a name such as "www", or "@" for the zone apex`)
		case h.Name != "@" && !isDomainName(h.Name):
			c.add(base+".name", "%q is not a domain name", rh.Name)
		default:
			if j, dup := seen[key]; dup {
				c.add(base+".name", "%q is dns.hosts[%d] again; list each name once", rh.Name, j)
			}
			seen[key] = i
		}
		h.Internal = c.addr(base+".internal", rh.Internal, true)
		in := site.InternalPrefix
		switch {
		case !h.Internal.IsValid():
		case !h.Internal.Is6():
			c.add(base+".internal", "%s is not IPv6; give the host's address inside site.internal_prefix", h.Internal)
		case in.IsValid() && !in.Contains(h.Internal):
			c.add(base+".internal", "%s is outside site.internal_prefix %s; give the host's internal (ULA) address, which the uplinks translate", h.Internal, in)
		}
		d.Hosts = append(d.Hosts, h)
	}
	return d
}

// tsigSecret reads the TSIG secret file into d: a file holding the base64
// secret alone, or a BIND key statement as tsig-keygen writes it.
func (c *checker) tsigSecret(file string, d *DNS) {
	const path = "dns.tsig.secret_file"
	if file == "" {
		c.add(path, "missing; name the file holding the TSIG secret (tsig-keygen's output, or the base64 secret alone)")
		return
	}
	if c.opts.noFiles {
		c.fileRef(path, file)
		return
	}
	data, warning, err := readSecretFile(file, c.profile)
	if err != nil {
		c.add(path, "%v", err)
		return
	}
	if warning != "" {
		c.note(path, "%s", warning)
	}
	text := strings.TrimSpace(string(data))
	if m := bindSecretRe.FindStringSubmatch(text); m != nil {
		text = m[1]
	}
	secret, err := base64.StdEncoding.DecodeString(text)
	switch {
	case err != nil:
		c.add(path, "%s holds no base64 secret; put the secret alone in it, or tsig-keygen's key statement", file)
	case len(secret) < 16:
		c.add(path, "%s holds a %d-byte secret; use a random secret of at least 16 bytes (tsig-keygen makes one)", file, len(secret))
	default:
		d.Secret = NewSecret(string(secret))
	}
}

// isDomainName reports whether s is a domain name of labels (a trailing
// dot allowed), at most 253 characters.
func isDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if !dnsLabelRe.MatchString(l) {
			return false
		}
	}
	return true
}

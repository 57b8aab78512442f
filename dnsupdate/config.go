package dnsupdate

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Config says which zone to keep in step and how to reach its primary. It is
// a plain type: the config package maps the daemon's YAML onto it, and the
// daemon reads the secret file.
type Config struct {
	// Zone is the zone the updates go to, such as "site.example". A trailing
	// dot is optional.
	Zone string
	// Server is the zone's primary, as address:port (no name: resolving it
	// would make DNS updates depend on DNS).
	Server netip.AddrPort
	// KeyName is the TSIG key's name as the server knows it.
	KeyName string
	// Algorithm is the TSIG algorithm: hmac-sha256 (the default when empty),
	// hmac-sha384 or hmac-sha512.
	Algorithm string
	// Secret is the decoded TSIG secret (not its base64 text).
	Secret []byte
	// TTL of the published AAAA records; 30s when zero. Short, because
	// resolvers keep serving an address of a failed uplink until it expires.
	TTL time.Duration
	// Timeout bounds each DNS exchange; 5s when zero.
	Timeout time.Duration
	// Hosts are the names published. Their records are the only ones the
	// updater ever reads or changes.
	Hosts []Host
}

// Host is one published name and the internal (ULA) address it stands for.
type Host struct {
	// Name is relative to the zone ("www") or absolute ("www.site.example.");
	// "@" is the zone apex.
	Name string
	// Internal is the host's address inside the site's internal prefix.
	Internal netip.Addr
}

// Defaults applied by New to zero fields.
const (
	DefaultTTL       = 30 * time.Second
	DefaultAlgorithm = "hmac-sha256"
	DefaultTimeout   = 5 * time.Second
)

// algorithms maps the names accepted in Config.Algorithm to miekg/dns's.
// hmac-md5 and hmac-sha1 are left out on purpose (RFC 8945 section 6).
var algorithms = map[string]string{
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// normalized is a validated Config with defaults applied and names made
// canonical (lowercase, fully qualified).
type normalized struct {
	zone      string
	server    string
	keyName   string
	algorithm string
	secret    string // base64, as miekg/dns wants it
	ttl       uint32
	timeout   time.Duration
	hosts     []Host // Name fully qualified, in config order
}

// normalize validates c. Errors name the field and the fix.
func (c Config) normalize() (normalized, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("dnsupdate: "+format, a...)) }

	n := normalized{timeout: c.Timeout}
	zone, err := canonicalName(c.Zone)
	switch {
	case strings.TrimSpace(c.Zone) == "":
		bad("zone is empty; give the zone to update, such as site.example")
	case err != nil:
		bad("zone %q: %v", c.Zone, err)
	default:
		n.zone = zone
	}
	if !c.Server.IsValid() || c.Server.Port() == 0 {
		bad("server %q: give the primary as address:port, such as 192.0.2.53:53", c.Server)
	} else {
		n.server = c.Server.String()
	}
	if key, err := canonicalName(c.KeyName); strings.TrimSpace(c.KeyName) == "" || err != nil {
		bad("key name %q: give the TSIG key's name as the server knows it, such as mh-update", c.KeyName)
	} else {
		n.keyName = key
	}
	alg := c.Algorithm
	if alg == "" {
		alg = DefaultAlgorithm
	}
	if a, ok := algorithms[strings.ToLower(strings.TrimSuffix(alg, "."))]; ok {
		n.algorithm = a
	} else {
		bad("algorithm %q: use hmac-sha256, hmac-sha384 or hmac-sha512", c.Algorithm)
	}
	if len(c.Secret) < 16 {
		bad("secret is %d bytes; use a random secret of at least 16 bytes (tsig-keygen makes one)", len(c.Secret))
	} else {
		n.secret = encodeSecret(c.Secret)
	}
	switch {
	case c.TTL == 0:
		n.ttl = uint32(DefaultTTL / time.Second)
	case c.TTL < time.Second || c.TTL%time.Second != 0 || c.TTL > 24*time.Hour:
		bad("ttl %s: use whole seconds between 1s and 24h (short: resolvers keep a failed uplink's address until it expires)", c.TTL)
	default:
		n.ttl = uint32(c.TTL / time.Second)
	}
	if n.timeout == 0 {
		n.timeout = DefaultTimeout
	}
	if n.timeout < 0 {
		bad("timeout %s is negative", c.Timeout)
	}
	seen := map[string]int{}
	for i, h := range c.Hosts {
		if n.zone == "" {
			break // every name would be reported outside the zone: fix the zone first
		}
		name, err := qualify(n.zone, h.Name)
		if err != nil {
			bad("hosts[%d].name: %v", i, err)
			continue
		}
		if j, dup := seen[name]; dup {
			bad("hosts[%d].name %q is hosts[%d] again; list each name once", i, h.Name, j)
			continue
		}
		seen[name] = i
		if !h.Internal.Is6() || h.Internal.Is4In6() || h.Internal.Zone() != "" {
			bad("hosts[%d].internal %q: give the host's internal IPv6 address without a zone", i, h.Internal)
			continue
		}
		n.hosts = append(n.hosts, Host{Name: name, Internal: h.Internal})
	}
	if len(errs) > 0 {
		return normalized{}, errors.Join(errs...)
	}
	return n, nil
}

// canonicalName lowercases name and makes it fully qualified.
func canonicalName(name string) (string, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return "", errors.New("not a domain name")
	}
	return dns.Fqdn(name), nil
}

// qualify turns a host name from the config into a fully qualified name
// inside zone, which must already be canonical. Names arrive from operators:
// FuzzQualify feeds it arbitrary strings.
func qualify(zone, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "@" {
		return zone, nil
	}
	if name == "" {
		return "", errors.New(`empty; give a name such as "www" or "@" for the zone apex`)
	}
	abs := dns.IsFqdn(name)
	c, err := canonicalName(name)
	if err != nil {
		return "", fmt.Errorf("%q is not a domain name", name)
	}
	if !abs {
		c = dns.Fqdn(strings.TrimSuffix(c, ".") + "." + zone)
		if _, ok := dns.IsDomainName(c); !ok {
			return "", fmt.Errorf("%q inside %s is too long for a domain name", name, zone)
		}
	}
	if zone == "" || !dns.IsSubDomain(zone, c) {
		return "", fmt.Errorf("%q is outside zone %s; give a name inside it", name, zone)
	}
	return c, nil
}

package dnsupdate

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/multihomed/multihomed/routing"
)

// Updater applies desired AAAA sets to the zone's primary. Set may be
// called again with the same desired state: it then sends no UPDATE. It is
// not safe for concurrent use; the Runner owns one.
type Updater struct {
	cfg normalized
	// names maps each canonical name to the name as configured, the key
	// callers use.
	names  map[string]string
	client *dns.Client
	// exchange sends one message and returns the answer; tests wrap it to
	// see what goes on the wire.
	exchange func(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
}

// New validates c and returns an Updater. It does not contact the server.
func New(c Config) (*Updater, error) {
	n, err := c.normalize()
	if err != nil {
		return nil, err
	}
	u := &Updater{cfg: n, names: make(map[string]string, len(n.hosts))}
	for i, h := range n.hosts {
		u.names[h.Name] = c.Hosts[i].Name
	}
	// TCP: an update with many hosts can outgrow a UDP message. One
	// connection per exchange: miekg/dns signs a second request on the same
	// connection as the continuation of the first (RFC 8945 section 5.3.1,
	// meant for zone transfers), which the server rejects with BADSIG.
	u.client = &dns.Client{Net: "tcp", Timeout: n.timeout, TsigSecret: map[string]string{n.keyName: n.secret}}
	u.exchange = func(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
		r, _, err := u.client.ExchangeContext(ctx, m, u.cfg.server)
		return r, err
	}
	return u, nil
}

// Zone is the zone updated, fully qualified.
func (u *Updater) Zone() string { return u.cfg.zone }

// Hosts returns the configured host names, in config order, as configured.
func (u *Updater) Hosts() []string {
	out := make([]string, 0, len(u.cfg.hosts))
	for _, h := range u.cfg.hosts {
		out = append(out, u.names[h.Name])
	}
	return out
}

func encodeSecret(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// rrset is what the server holds, or we want, for one name.
type rrset struct {
	addrs []netip.Addr // sorted, unique
	ttl   uint32       // of the records read; 0 when there are none
}

// Set makes the server hold exactly desired[name] as the AAAA RRset of each
// configured host (keys are host names as configured; a configured host
// missing from desired is published with no AAAA records, and a key that is
// no configured host is an error). It reads the current RRsets (one AAAA
// query per host, TSIG-signed, to the primary: no zone transfer, so the key
// needs no transfer right and names outside our hosts are never read), then
// sends one UPDATE (RFC 2136) covering every host that differs, each with a
// prerequisite pinning the RRset it read (RFC 2136 section 2.4.2, or 2.4.3
// when it read none), so a concurrent change fails the whole update with
// ErrConflict instead of being overwritten.
//
// It returns what the server holds afterwards for every host: the desired
// state when the update succeeded or was not needed, what it read when the
// update failed, and nil when the read failed.
func (u *Updater) Set(ctx context.Context, desired map[string][]netip.Addr) (map[string][]netip.Addr, error) {
	want, err := u.wanted(desired)
	if err != nil {
		return nil, err
	}
	have := make(map[string]rrset, len(u.cfg.hosts))
	for _, h := range u.cfg.hosts {
		s, err := u.read(ctx, h.Name)
		if err != nil {
			return nil, err
		}
		have[h.Name] = s
	}
	msg := u.updateMsg(have, want)
	if msg == nil {
		return u.keyed(have), nil
	}
	r, err := u.exchange(ctx, msg)
	if err := u.classify("update "+u.cfg.zone, r, err); err != nil {
		return u.keyed(have), err
	}
	return u.keyed(want), nil
}

// wanted checks desired against the configured hosts and keys it by
// canonical name.
func (u *Updater) wanted(desired map[string][]netip.Addr) (map[string]rrset, error) {
	byConfig := make(map[string]string, len(u.names))
	for canon, name := range u.names {
		byConfig[name] = canon
	}
	for name := range desired {
		if _, ok := byConfig[name]; !ok {
			return nil, fmt.Errorf("dnsupdate: desired records for %q, which is not a configured host; add it to the hosts", name)
		}
	}
	want := make(map[string]rrset, len(u.cfg.hosts))
	for _, h := range u.cfg.hosts {
		addrs := desired[u.names[h.Name]]
		for _, a := range addrs {
			if !a.Is6() || a.Is4In6() || a.Zone() != "" {
				return nil, fmt.Errorf("dnsupdate: desired address %s for %s is not a plain IPv6 address", a, u.names[h.Name])
			}
		}
		s := rrset{addrs: routing.AddrSet(addrs)}
		if len(s.addrs) > 0 {
			s.ttl = u.cfg.ttl
		}
		want[h.Name] = s
	}
	return want, nil
}

// read queries the AAAA RRset of name.
func (u *Updater) read(ctx context.Context, name string) (rrset, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeAAAA)
	q.RecursionDesired = false
	q.SetTsig(u.cfg.keyName, u.cfg.algorithm, 300, time.Now().Unix())
	r, err := u.exchange(ctx, q)
	what := "query " + name + " AAAA"
	if err := u.classify(what, r, err); err != nil {
		return rrset{}, err
	}
	if !r.Authoritative {
		return rrset{}, fmt.Errorf("dnsupdate: %s at %s: %w: the answer is not authoritative; point server at the primary of %s", what, u.cfg.server, ErrNotAuth, u.cfg.zone)
	}
	return parseAnswer(r, name), nil
}

// parseAnswer extracts the AAAA RRset of name from an answer from outside
// (FuzzParseAnswer). Records of other names and types are ignored; the TTL
// is the smallest seen (a server holds one TTL per RRset, but the answer is
// not ours to trust).
func parseAnswer(r *dns.Msg, name string) rrset {
	var s rrset
	for _, rr := range r.Answer {
		a, ok := rr.(*dns.AAAA)
		if !ok || !strings.EqualFold(a.Hdr.Name, name) || a.Hdr.Class != dns.ClassINET {
			continue
		}
		addr, ok := netip.AddrFromSlice(a.AAAA)
		if !ok || !addr.Is6() {
			continue
		}
		s.addrs = append(s.addrs, addr)
		if s.ttl == 0 || a.Hdr.Ttl < s.ttl {
			s.ttl = a.Hdr.Ttl
		}
	}
	s.addrs = routing.AddrSet(s.addrs)
	return s
}

// updateMsg builds the one UPDATE for every host whose RRset differs from
// want, or returns nil when none does. Per changed host: a prerequisite
// that the RRset is exactly what was read, then delete the RRset, then add
// the wanted records. RFC 2136 section 3.4.2 applies the update section in
// order and the whole message atomically, so the name never goes without
// records in between.
func (u *Updater) updateMsg(have, want map[string]rrset) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(u.cfg.zone)
	changed := false
	for _, h := range u.cfg.hosts {
		hv, wv := have[h.Name], want[h.Name]
		if slices.Equal(hv.addrs, wv.addrs) && hv.ttl == wv.ttl {
			continue
		}
		changed = true
		if len(hv.addrs) == 0 {
			m.RRsetNotUsed([]dns.RR{u.aaaa(h.Name, netip.IPv6Unspecified(), 0)})
		} else {
			m.Used(u.records(h.Name, hv.addrs, 0))
		}
		m.RemoveRRset([]dns.RR{u.aaaa(h.Name, netip.IPv6Unspecified(), 0)})
		if len(wv.addrs) > 0 {
			m.Insert(u.records(h.Name, wv.addrs, u.cfg.ttl))
		}
	}
	if !changed {
		return nil
	}
	m.SetTsig(u.cfg.keyName, u.cfg.algorithm, 300, time.Now().Unix())
	return m
}

func (u *Updater) records(name string, addrs []netip.Addr, ttl uint32) []dns.RR {
	out := make([]dns.RR, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, u.aaaa(name, a, ttl))
	}
	return out
}

func (u *Updater) aaaa(name string, a netip.Addr, ttl uint32) *dns.AAAA {
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
}

// keyed re-keys sets by configured host name.
func (u *Updater) keyed(sets map[string]rrset) map[string][]netip.Addr {
	out := make(map[string][]netip.Addr, len(sets))
	for canon, s := range sets {
		out[u.names[canon]] = s.addrs
	}
	return out
}

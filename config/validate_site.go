package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// filters checks the bogon lists, applying the lab profile's relaxations.
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

// site checks the prefixes the site announces.
func (c *checker) site(r rawSite, profile Profile) Site {
	var s Site
	if len(r.Prefixes) == 0 {
		c.add("site.prefixes", "missing; list the prefixes the site owns, such as 2001:db8:face::/48")
	}
	n := c.limit("site.prefixes", len(r.Prefixes), MaxSitePrefixes, "announce covering prefixes instead")
	var listed []indexedPrefix
	for i, str := range r.Prefixes[:n] {
		path := fmt.Sprintf("site.prefixes[%d]", i)
		p, ok := c.prefix(path, str)
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
		if profile == ProfileProduction {
			if IsDocumentation(p) {
				c.add(path, "%s is documentation space that no ISP accepts; use your own prefix, or set profile: lab for a lab", p)
			} else if why := unroutable(p); why != "" {
				c.add(path, "%s %s, which ISPs drop; announce the provider-independent prefix the site owns, or set profile: lab for a lab", p, why)
			}
		}
		listed = append(listed, indexedPrefix{i, p})
		s.Prefixes = append(s.Prefixes, p)
	}
	c.overlaps("site.prefixes", listed)
	return s
}

// indexedPrefix is a prefix and its index in the list it came from.
type indexedPrefix struct {
	index  int
	prefix netip.Prefix
}

// overlaps reports each prefix of list that repeats or lies inside another,
// once, in O(n log n): sorted by address and then length, a prefix can only
// lie inside the last one that lay inside no other (distinct top-level
// prefixes are disjoint, and sorting keeps a prefix's contents right after
// it). Copies of one prefix give one problem, however many there are.
func (c *checker) overlaps(path string, list []indexedPrefix) {
	sorted := slices.Clone(list)
	slices.SortStableFunc(sorted, func(a, b indexedPrefix) int {
		if d := a.prefix.Addr().Compare(b.prefix.Addr()); d != 0 {
			return d
		}
		return cmp.Compare(a.prefix.Bits(), b.prefix.Bits())
	})
	var top *indexedPrefix
	for i := 0; i < len(sorted); {
		// sorted[i:j] are copies of one prefix, in list order.
		j := i + 1
		for j < len(sorted) && sorted[j].prefix == sorted[i].prefix {
			j++
		}
		first := &sorted[i]
		if j-i > 1 {
			c.add(fmt.Sprintf("%s[%d]", path, sorted[i+1].index), "%s is listed %d times (first at %s[%d]); list each block once", first.prefix, j-i, path, first.index)
		}
		switch {
		case top != nil && top.prefix.Bits() <= first.prefix.Bits() && top.prefix.Contains(first.prefix.Addr()):
			// Report at the later entry, naming the earlier one.
			later, earlier := first, top
			if later.index < earlier.index {
				later, earlier = earlier, later
			}
			c.add(fmt.Sprintf("%s[%d]", path, later.index), "%s overlaps %s[%d] %s; list each block once", later.prefix, path, earlier.index, earlier.prefix)
		default:
			top = first
		}
		i = j
	}
}

// announceable checks that every site prefix has a session of its family.
func (c *checker) announceable(site Site, uplinks []Uplink) {
	if len(uplinks) == 0 {
		return
	}
	var has4, has6 bool
	for _, u := range uplinks {
		for _, s := range u.BGP.Sessions() {
			if s.Neighbor.IsValid() {
				has4 = has4 || s.Neighbor.Is4()
				has6 = has6 || s.Neighbor.Is6()
			}
		}
	}
	for i, p := range site.Prefixes {
		if p.Addr().Is4() && !has4 || p.Addr().Is6() && !has6 {
			fam, key := "IPv6", "neighbor"
			if p.Addr().Is4() {
				fam, key = "IPv4", "neighbor_ipv4"
			}
			c.add(fmt.Sprintf("site.prefixes[%d]", i), "%s is %s but no uplink has an %s session to announce it on; set uplinks[].bgp.%s", p, fam, fam, key)
		}
	}
}

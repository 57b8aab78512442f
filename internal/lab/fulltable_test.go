package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

// TestFullTableFeed: the generated feed has no duplicate prefix, stays
// clear of the site and link prefixes multihomed is given, and gives every
// prefix a path of 2-4 ASNs that is its own and holds neither the
// receiver's nor the feeder's AS (a receiver drops those as loops).
func TestFullTableFeed(t *testing.T) {
	const v6, v4 = 200000, 1000000
	seen := make(map[netip.Prefix]bool, v6+v4)
	reserved := []netip.Prefix{ftSite6, ftSite4, netip.PrefixFrom(ftFeeder6, 48), netip.PrefixFrom(ftFeeder4, 24)}
	for _, fam := range []struct {
		n   int
		is6 bool
	}{{v6, true}, {v4, false}} {
		for i := range fam.n {
			p := FullTablePrefix(fam.is6, i)
			if seen[p] {
				t.Fatalf("prefix %d (%v) repeats %s", i, fam.is6, p)
			}
			seen[p] = true
			if p.Addr().Is6() != fam.is6 {
				t.Fatalf("prefix %d: %s is of the wrong family", i, p)
			}
			for _, r := range reserved {
				if r.Overlaps(p) {
					t.Fatalf("prefix %d: %s overlaps %s", i, p, r)
				}
			}
		}
	}
	firsts := map[uint32]bool{}
	for _, k := range []int{0, 1, 2, 3, 65535, 1 << 24, 1<<24 + 999999} {
		path := FullTablePath(k, 0)
		if len(path) < 2 || len(path) > 4 {
			t.Errorf("path %d: %v: want 2-4 ASNs", k, path)
		}
		if firsts[path[0]] {
			t.Errorf("path %d: %v shares its first ASN", k, path)
		}
		firsts[path[0]] = true
		if slices.Contains(path, FullTableReceiverASN) || slices.Contains(path, FullTableFeederASN) {
			t.Errorf("path %d: %v holds the receiver's or the feeder's AS", k, path)
		}
	}
}

// TestFullTablePathsShared: with paths set, the feed has exactly that many
// distinct AS paths, none with the receiver's or the feeder's AS.
func TestFullTablePathsShared(t *testing.T) {
	const paths = 1000
	distinct := map[string]bool{}
	for k := range 20000 {
		path := FullTablePath(1<<24+k, paths)
		if slices.Contains(path, FullTableReceiverASN) || slices.Contains(path, FullTableFeederASN) {
			t.Fatalf("path %d: %v holds the receiver's or the feeder's AS", k, path)
		}
		distinct[fmt.Sprint(path)] = true
	}
	if len(distinct) != paths {
		t.Errorf("20,000 prefixes got %d distinct paths; want %d", len(distinct), paths)
	}
}

package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/multihomed/multihomed/config"
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

// TestInstallRouteParsing: the failover bench reads a route's nexthop id
// and device from `ip -o route show` lines as the kernel prints them with
// nexthop_compat_mode 0 and 1, and resolves nexthop groups to their legs'
// devices, a blackhole and a missing leg included.
func TestInstallRouteParsing(t *testing.T) {
	for _, tc := range []struct {
		line string
		id   int
		dev  string
	}{
		{"2001:db8:5::/48 nhid 20 proto 79 metric 1024 pref medium", 20, ""},
		{`2001:db8:5::/48 nhid 20 proto 79 metric 1024 pref medium\	nexthop via 2001:db8:9::1 dev eth0 weight 1 `, 20, "eth0"},
		{"10.0.0.0/24 nhid 11 via 198.51.100.1 dev eth1 proto 79", 11, "eth1"},
		{"10.0.1.0/24 via 198.51.100.1 dev eth0 proto 79", 0, "eth0"},
	} {
		if id, dev := routeVia(tc.line); id != tc.id || dev != tc.dev {
			t.Errorf("routeVia(%q) = %d, %q; want %d, %q", tc.line, id, dev, tc.id, tc.dev)
		}
	}
	nhs, err := parseNexthops([]byte(`[{"id":10,"gateway":"2001:db8:9::1","dev":"eth0","scope":"link","protocol":"79","flags":[]},
{"id":11,"gateway":"2001:db8:8::1","dev":"eth1","flags":[]},{"id":12,"blackhole":null,"flags":[]},
{"id":20,"group":[{"id":10}],"protocol":"79","flags":[]},{"id":21,"group":[{"id":11},{"id":10}],"flags":[]},
{"id":22,"group":[{"id":12}],"flags":[]},{"id":23,"group":[{"id":99}],"flags":[]}]`))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int][]string{10: {"eth0"}, 20: {"eth0"}, 21: {"eth1", "eth0"}, 22: {"blackhole"}, 23: {"missing"}, 98: {"missing"}} {
		if got := nhs.devices(id); !slices.Equal(got, want) {
			t.Errorf("devices(%d) = %v; want %v", id, got, want)
		}
	}
	if _, err := parseNexthops([]byte("Error: no nexthops")); err == nil {
		t.Error("parseNexthops took text that is not JSON")
	}
}

// TestFullTableConfigs: the bench's two daemon configurations load; the
// plain one has the feeder's uplink alone, unprobed, nothing installed;
// the install run's adds ISP-B with the default import, probes both
// every 50 ms and installs into FullTableInstallTable.
func TestFullTableConfigs(t *testing.T) {
	f := &FullTable{IPv6: 200000, IPv4: 1000000}
	plain, err := config.Parse("fulltable", []byte(f.FullTableConfig(t.TempDir())), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.Uplinks) != 1 || plain.Uplinks[0].Health != nil || plain.BGP.Install.Table != 0 || plain.Uplinks[0].BGP.Import != config.ImportFull {
		t.Errorf("plain run: %d uplinks, health %v, install table %d, import %q; want 1, none, 0, full",
			len(plain.Uplinks), plain.Uplinks[0].Health, plain.BGP.Install.Table, plain.Uplinks[0].BGP.Import)
	}
	inst, err := config.Parse("fulltable-install", []byte(f.FullTableInstallConfig(t.TempDir())), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Uplinks) != 2 || inst.BGP.Install.Table != FullTableInstallTable {
		t.Fatalf("install run: %d uplinks, install table %d; want 2, %d", len(inst.Uplinks), inst.BGP.Install.Table, FullTableInstallTable)
	}
	for i, u := range inst.Uplinks {
		if u.Health == nil || u.Health.Interval != 50*time.Millisecond || len(u.Health.Targets) != 2 {
			t.Errorf("install run, uplink %s: health %+v; want two targets every 50ms", u.Name, u.Health)
		}
		if want := []config.ImportMode{config.ImportFull, config.ImportDefault}[i]; u.BGP.Import != want {
			t.Errorf("install run, uplink %s: import %q; want %q", u.Name, u.BGP.Import, want)
		}
	}
}

// TestMeasureFullTableReceiverGone: a receiver that exits (or reports an
// error) ends the measurement at its first sign, with that error, instead
// of polling it until the timeout. A second poll after the sign fails the
// test (and cancels the measurement, so that the test cannot hang).
func TestMeasureFullTableReceiverGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polls := 0
	gone := fmt.Errorf("lab: test receiver exited: %w", errReceiverGone)
	r := &FullTableReceiver{Name: "test",
		Established: func(context.Context) (bool, error) { return true, nil },
		Accepted: func(context.Context) (int, error) {
			polls++
			if polls > 1 {
				t.Error("polled again after the receiver was gone")
				cancel()
			}
			return 0, gone
		},
	}
	res, err := (&FullTable{IPv6: 1, IPv4: 1}).MeasureFullTable(ctx, r, time.Millisecond, time.Hour)
	if !errors.Is(err, errReceiverGone) || res.Finished {
		t.Errorf("MeasureFullTable = %+v, %v; want the receiver's error, not finished", res, err)
	}
}

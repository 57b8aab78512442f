package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// inBulk reports whether the speaker is in a bulk transfer and GoBGP's
// count of addr's table as of its last tick (false before the first).
func (s *Speaker) inBulk(addr netip.Addr) (active bool, ticked bool) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.bulk == nil {
		return false, false
	}
	_, ticked = s.bulk.received[addr]
	return s.bulk.active, ticked
}

func (p *testPeer) withdraw(t *testing.T, prefix string) {
	t.Helper()
	nlri, _ := bgp.NewIPAddrPrefix(netip.MustParsePrefix(prefix))
	nh, _ := bgp.NewPathAttributeNextHop(netip.MustParseAddr("127.0.0.2"))
	must(t, p.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{{Family: bgp.RF_IPv4_UC, Nlri: nlri, Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nh}}}}))
}

// grow has the test peer originate one more route every 300 ms, so its
// table never goes quiet for two reads a second or more apart, until the
// returned func is called.
func (p *testPeer) grow(t *testing.T) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			select {
			case <-done:
				return
			case <-time.After(300 * time.Millisecond):
			}
			p.originate(t, "127.0.0.2", fmt.Sprintf("203.0.113.%d/32", i))
		}
	}()
	return func() { close(done); wg.Wait() }
}

// TestNextBulkRead: a transfer's reads of GoBGP's tables are spaced
// widely while every session is far from its limit, as soon as one could
// reach it (growing at twice its last rate, or the fastest session's while
// in its transfer; less the read's time), never closer than bulkTickShare
// reads or bulkTickMin, never further apart than bulkTickMax.
func TestNextBulkRead(t *testing.T) {
	const took = 100 * time.Millisecond
	far, near := min(bulkTickMax, bulkTickFar*took), bulkTickShare*took
	reaching := sessionGrowth{prev: 0, now: 10_000, max: 60_000, over: time.Second} // 50,000 to go at 20,000/s
	for _, c := range []struct {
		name   string
		took   time.Duration
		growth []sessionGrowth
		want   time.Duration
	}{
		{"no session", took, nil, far},
		{"no growth", took, []sessionGrowth{{prev: 10, now: 10, max: 100, over: time.Second}}, far},
		{"far from the limit", took, []sessionGrowth{{prev: 0, now: 1_000, max: 1_000_000, over: time.Second}}, far},
		{"could reach it before the wide spacing", took, []sessionGrowth{reaching}, 2400 * time.Millisecond},
		{"the closest session sets it", took, []sessionGrowth{{prev: 0, now: 1_000, max: 1_000_000, over: time.Second}, reaching}, 2400 * time.Millisecond},
		{"about to reach it", took, []sessionGrowth{{prev: 0, now: 10_000, max: 11_000, over: time.Second}}, near},
		{"over it", took, []sessionGrowth{{prev: 50, now: 200, max: 100, over: time.Second}}, near},
		{"grew at an unknown rate", took, []sessionGrowth{{prev: 1, now: 2, max: 100}}, near},
		{"quick reads", 10 * time.Millisecond, []sessionGrowth{{prev: 0, now: 10_000, max: 11_000, over: time.Second}}, bulkTickMin},
		// A peer that sends one family, then the other: the session in its
		// transfer that has not grown yet could at twice the other's
		// 10,000/s (30,000 to go: 1.5 s, less the read), long before the
		// wide spacing or the other's limit.
		{"a session in transfer that has not grown could at the fastest's rate", took, []sessionGrowth{{prev: 0, now: 10_000, max: 1_000_000, over: time.Second, transfer: true}, {prev: 0, now: 0, max: 30_000, over: time.Second, transfer: true}}, 1400 * time.Millisecond},
		// A default-only uplink (max 100) beside a full table: not in a
		// transfer, it keeps its own rate, none.
		{"a quiet session out of transfer keeps its own rate", took, []sessionGrowth{{prev: 0, now: 10_000, max: 1_000_000, over: time.Second, transfer: true}, {prev: 1, now: 1, max: 100, over: time.Second}}, far},
		{"one first read, nothing grew", took, []sessionGrowth{{prev: 5_000, now: 5_000, max: 6_000}}, far},
		{"slow reads far from the limit: at most bulkTickMax", time.Second, nil, bulkTickMax},
		{"slow reads near the limit: at most bulkTickMax too", 2 * time.Second, []sessionGrowth{{prev: 0, now: 10_000, max: 11_000, over: time.Second}}, bulkTickMax},
	} {
		got := nextBulkRead(c.took, c.growth)
		if d := got - c.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("%s: next read in %s, want %s", c.name, got, c.want)
		}
	}
}

// fullTableSpeaker starts a test peer at 127.0.0.2 that originates
// routes, and a speaker whose one uplink takes a full table from it (tune,
// if not nil, changes the configuration first) and announces the site.
func fullTableSpeaker(t *testing.T, tune func(*config.Config), routes ...string) (*Speaker, *testPeer, *config.Config) {
	t.Helper()
	port := freePort(t)
	peer := startTestPeer(t, "127.0.0.2", port, 64501, routes)
	cfg := loopbackConfig(t)
	cfg.Uplinks = cfg.Uplinks[:1]
	cfg.Uplinks[0].BGP.Import = config.ImportFull
	if tune != nil {
		tune(cfg)
	}
	sp := startSpeaker(t, port, cfg)
	_, err := sp.SetAnnouncements(context.Background(), BaseAnnouncements(cfg))
	must(t, err)
	return sp, peer, cfg
}

// TestBulkTransferCounts: a session with import: full starts as a bulk
// transfer (no update watch); a route withdrawn during it and a route the
// import policy rejects are counted right once the transfer ends (the
// test peer sends no End-of-RIB, so its table going quiet ends it).
func TestBulkTransferCounts(t *testing.T) {
	// 198.51.100.0/25 is inside the site's prefix: received, not accepted.
	sp, peer, _ := fullTableSpeaker(t, nil, "192.0.2.0/24", "203.0.113.0/24", "198.51.100.0/25")
	addr := netip.MustParseAddr("127.0.0.2")
	eventually(t, "a bulk transfer that has read GoBGP's table once", 20*time.Second, func() (bool, string) {
		active, ticked := sp.inBulk(addr)
		return active && ticked, fmt.Sprintf("active %v, ticked %v", active, ticked)
	})
	// The watch is off: only the rebuild can see this.
	peer.withdraw(t, "192.0.2.0/24")
	eventually(t, "the transfer over and the counts exact", 20*time.Second, func() (bool, string) {
		active, _ := sp.inBulk(addr)
		ss := sp.Sessions()
		return !active && len(ss) == 1 && ss[0].Received == 2 && ss[0].Accepted == 1, fmt.Sprintf("active %v, %v", active, ss)
	})
	// The watch is back: a change after the transfer counts at once.
	peer.originate(t, "127.0.0.2", "192.0.2.0/24")
	eventually(t, "a route after the transfer counted", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return len(ss) == 1 && ss[0].Received == 3 && ss[0].Accepted == 2, fmt.Sprint(ss)
	})
	if active, _ := sp.inBulk(addr); active {
		t.Error("one route after the transfer started another bulk transfer")
	}
}

// TestBulkTransferPhases: status says where a full table's counts are.
// During the transfer the session is receiving; once the transfer is over
// (the test peer sends no End-of-RIB: its table went quiet over two reads)
// it is counting for as long as the rebuild has not run (the test holds it
// back); after the rebuild the counts are exact and the phase is gone.
func TestBulkTransferPhases(t *testing.T) {
	sp, _, _ := fullTableSpeaker(t, nil, "192.0.2.0/24", "203.0.113.0/24", "198.51.100.0/25")
	addr := netip.MustParseAddr("127.0.0.2")
	eventually(t, "a bulk transfer that has read GoBGP's table once", 20*time.Second, func() (bool, string) {
		active, ticked := sp.inBulk(addr)
		return active && ticked, fmt.Sprintf("active %v, ticked %v", active, ticked)
	})
	if ss := sp.Sessions(); ss[0].ImportPhase != routing.ImportReceiving {
		t.Errorf("during the transfer the phase is %q; want %q", ss[0].ImportPhase, routing.ImportReceiving)
	}
	sp.bulk.mu.Lock() // the rebuild waits (the transfer's reads do not take b.mu)
	held := true
	defer func() {
		if held {
			sp.bulk.mu.Unlock()
		}
	}()
	eventually(t, "the transfer over, counting", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return ss[0].ImportPhase == routing.ImportCounting && ss[0].Received == 3, fmt.Sprint(ss)
	})
	held = false
	sp.bulk.mu.Unlock()
	eventually(t, "the counts exact and no phase", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return ss[0].ImportPhase == "" && ss[0].Received == 3 && ss[0].Accepted == 2, fmt.Sprint(ss)
	})
}

// TestDeletedSessionEndsTransfer: a session deleted during its transfer
// ends it at once. GoBGP's peer-down event can come after the session's
// state is gone, and is then ignored: the transfer would never end, the
// watch never restart and every session stay counting.
func TestDeletedSessionEndsTransfer(t *testing.T) {
	sp, peer, _ := fullTableSpeaker(t, nil, "192.0.2.0/24")
	addr := netip.MustParseAddr("127.0.0.2")
	defer peer.grow(t)()
	eventually(t, "a bulk transfer that has read GoBGP's table once", 20*time.Second, func() (bool, string) {
		active, ticked := sp.inBulk(addr)
		return active && ticked, fmt.Sprintf("active %v, ticked %v", active, ticked)
	})
	sp.opMu.Lock()
	err := sp.deletePeer(context.Background(), addr)
	sp.opMu.Unlock()
	must(t, err)
	sp.stateMu.Lock()
	inTransfer := sp.bulk.initial[addr] != nil
	_, read := sp.bulk.received[addr]
	sp.stateMu.Unlock()
	if inTransfer || read {
		t.Errorf("after the delete: in transfer %v, a read count kept %v; want neither", inTransfer, read)
	}
	eventually(t, "the transfer runner done", 20*time.Second, func() (bool, string) {
		active, _ := sp.inBulk(addr)
		return !active, "still in a bulk transfer"
	})
}

// TestBulkTransferMaxPrefix: while a table keeps growing the transfer
// lasts and the watch stays off, so only the transfer's reads of GoBGP's
// table can find it over max_prefixes: the session must be held down.
func TestBulkTransferMaxPrefix(t *testing.T) {
	sp, peer, _ := fullTableSpeaker(t, func(c *config.Config) { c.Uplinks[0].BGP.MaxPrefixes, c.Uplinks[0].BGP.MaxPrefixRestart = 3, 0 }, "192.0.2.0/24")
	addr := netip.MustParseAddr("127.0.0.2")
	eventually(t, "a bulk transfer", 20*time.Second, func() (bool, string) {
		active, _ := sp.inBulk(addr)
		return active, "not in a bulk transfer"
	})
	defer peer.grow(t)()
	eventually(t, "held down for max-prefix", 30*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return len(ss) == 1 && ss[0].HeldDown != "" && !ss[0].Established(), fmt.Sprint(ss)
	})
}

// TestBulkTransferWakesForEdge: another edge's UPDATEs wake the controller
// through the watch, which a transfer stops; meanwhile the speaker must
// wake it on its own. The edge peer here never comes up (nothing listens)
// and retries only every two minutes, and the ISP's table keeps growing so
// the transfer lasts: a signal can come only from that wake.
func TestBulkTransferWakesForEdge(t *testing.T) {
	port := freePort(t)
	peer := startTestPeer(t, "127.0.0.2", port, 64501, []string{"192.0.2.0/24"})
	cfg, err := config.Parse("test", []byte(fmt.Sprintf(`
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: [198.51.100.0/24]}
bgp: {graceful_restart: false, listen_port: %d}
ibgp:
  peers:
    - {neighbor: "::1", local_address: "::1", role: edge, interface: lo, hold_time: 9s, connect_retry: 120s}
uplinks:
  - name: isp-a
    interface: lo
    bgp: {peer_asn: 64501, neighbor: 127.0.0.2, local_address: 127.0.0.1, hold_time: 9s, connect_retry: 1s, import: full}
`, freePort(t))), nil)
	must(t, err)
	sp := startSpeaker(t, port, cfg)
	_, err = sp.SetAnnouncements(context.Background(), BaseAnnouncements(cfg))
	must(t, err)
	defer peer.grow(t)()
	addr := netip.MustParseAddr("127.0.0.2")
	eventually(t, "a bulk transfer that has read GoBGP's table once", 20*time.Second, func() (bool, string) {
		active, ticked := sp.inBulk(addr)
		return active && ticked, fmt.Sprintf("active %v, ticked %v", active, ticked)
	})
	for range 3 {
		select {
		case <-sp.Changed(): // what came before
		default:
		}
		select {
		case <-sp.Changed():
		case <-time.After(5 * time.Second):
			t.Fatal("no wake of the controller in 5 s of a transfer with another edge configured")
		}
		if active, _ := sp.inBulk(addr); !active {
			t.Fatal("the transfer ended while the table grew")
		}
	}
}

// BenchmarkRebuildCounts: the recount that ends a full table's initial
// transfer, over 200,000 IPv4 routes held from an in-process peer, against
// GoBGP's walk of the same table with nothing done per route (the floor
// while the walk goes through ListPath). Reported per route; the ratio of
// the two is what the recount adds to GoBGP's walk.
func BenchmarkRebuildCounts(b *testing.B) {
	const n = 200_000
	_, port, cfg := fullFeed(b, n)
	sp := New(Options{PeerPort: uint32(port), FirstAnnounceWait: time.Millisecond})
	ctx := context.Background()
	must(b, sp.Start(ctx, cfg))
	defer sp.Stop(ctx)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ss := sp.Sessions()
		if len(ss) == 1 && ss[0].Accepted == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the table was not imported and counted within 5 minutes: %v", ss)
		}
		time.Sleep(100 * time.Millisecond)
	}
	addr := netip.MustParseAddr("127.0.0.2")
	perRoute := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/route")
	}
	b.Run("walk only", func(b *testing.B) {
		for b.Loop() {
			routes := 0
			must(b, sp.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: addr.String(), Family: bgp.RF_IPv4_UC}, func(_ bgp.NLRI, paths []*apiutil.Path) {
				routes += len(paths)
			}))
			if routes != n {
				b.Fatalf("walked %d routes; want %d", routes, n)
			}
		}
		perRoute(b)
	})
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			sp.bulk.mu.Lock()
			err := sp.rebuildCounts(sp.bulk)
			sp.bulk.mu.Unlock()
			must(b, err)
			if ss := sp.Sessions(); ss[0].Received != n || ss[0].Accepted != n {
				b.Fatalf("after the rebuild: %v; want %d received and accepted", ss, n)
			}
		}
		perRoute(b)
	})
}

// TestReloadRecountDoesNotHoldReconfigure: a reload that changes import
// recounts every session's table, seconds with a full table; Reconfigure
// holds opMu, which a failover's SetAnnouncements waits for, so it must
// not wait for the recount. The test holds the recount back (b.mu) and
// wants Reconfigure back first, announcement changes sized by what was
// received meanwhile (the old rules' accepted count is too small: a change
// made in place would walk the table), then the counts right once the
// recount is let go.
func TestReloadRecountDoesNotHoldReconfigure(t *testing.T) {
	bogon := netip.MustParsePrefix("203.0.113.0/24")
	sp, _, cfg := fullTableSpeaker(t, func(c *config.Config) {
		c.Filters.BogonPrefixes = append(slices.Clone(c.Filters.BogonPrefixes), bogon)
	}, "192.0.2.0/24", "203.0.113.0/24")
	addr := netip.MustParseAddr("127.0.0.2")
	eventually(t, "the transfer over, one route accepted of two", 20*time.Second, func() (bool, string) {
		active, _ := sp.inBulk(addr)
		ss := sp.Sessions()
		return !active && len(ss) == 1 && ss[0].Received == 2 && ss[0].Accepted == 1, fmt.Sprintf("in transfer %v, %v", active, ss)
	})
	next := *cfg
	next.Filters.BogonPrefixes = slices.DeleteFunc(slices.Clone(cfg.Filters.BogonPrefixes), func(p netip.Prefix) bool { return p == bogon })
	if !importChanged(cfg, &next) {
		t.Fatal("the test's reload does not change import")
	}
	if n := sp.tableRoutes(); n != 1 {
		t.Fatalf("before the reload the table counts %d routes; want the 1 accepted", n)
	}
	sp.bulk.mu.Lock() // a recount in progress, as long as the test likes
	reloaded := make(chan error, 1)
	go func() { reloaded <- sp.Reconfigure(context.Background(), &next) }()
	select {
	case err := <-reloaded:
		must(t, err)
	case <-time.After(20 * time.Second):
		sp.bulk.mu.Unlock()
		t.Fatal("Reconfigure waited for the recount")
	}
	if ss := sp.Sessions(); ss[0].Accepted != 1 || ss[0].ImportPhase != routing.ImportCounting {
		t.Errorf("before the recount ran: accepted %d, phase %q; want 1 (the old rules' count), %q", ss[0].Accepted, ss[0].ImportPhase, routing.ImportCounting)
	}
	if n := sp.tableRoutes(); n != 2 {
		t.Errorf("while the recount waits the table counts %d routes; want the 2 received", n)
	}
	sp.bulk.mu.Unlock()
	eventually(t, "the recount without the bogon", 20*time.Second, func() (bool, string) {
		ss := sp.Sessions()
		return ss[0].Received == 2 && ss[0].Accepted == 2 && ss[0].ImportPhase == "", fmt.Sprint(ss)
	})
}

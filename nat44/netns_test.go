package nat44

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/netns/netnstest"
	"github.com/multihomed/multihomed/internal/testenv"
)

// topo is lan -- edge ==(ua, ub)== inet: the LAN host 192.0.2.2 behind the
// edge, which reaches the internet host's 198.18.0.1 over uplink A
// (198.51.100.0/24) or uplink B (203.0.113.0/24). inet has no route to the
// LAN: only NATed packets can be answered.
type topo = netnstest.TwoUplinks

func newTopo(t *testing.T) topo {
	t.Helper()
	testenv.Need(t, "ip", "nft", "conntrack")
	tp := netnstest.NewTwoUplinks(t, "n44")
	netnstest.AddAddr(t, tp.LAN, "eth0", "192.0.2.2/24")
	netnstest.AddAddr(t, tp.Edge, "lan", "192.0.2.1/24")
	netnstest.AddAddr(t, tp.Edge, "ua", "198.51.100.1/24")
	netnstest.AddAddr(t, tp.Inet, "ia", "198.51.100.2/24")
	netnstest.AddAddr(t, tp.Edge, "ub", "203.0.113.1/24")
	netnstest.AddAddr(t, tp.Inet, "ib", "203.0.113.2/24")
	netnstest.AddAddr(t, tp.Inet, "lo", "198.18.0.1/32")
	netnstest.Run(t, tp.LAN, "ip", "route", "add", "default", "via", "192.0.2.1")
	netnstest.Run(t, tp.Edge, "ip", "route", "add", "198.18.0.1/32", "via", "198.51.100.2")
	// The internet host accepts packets of either uplink's address on either
	// link: the test shows which address a flow uses, not where it enters.
	for _, k := range []string{"all", "default", "ia", "ib"} {
		netnstest.Run(t, tp.Inet, "sysctl", "-qw", "net.ipv4.conf."+k+".rp_filter=0")
	}
	return tp
}

// udpServer receives on 198.18.0.1:9999 in inet and reports each packet's
// source address.
func udpServer(t *testing.T, inet *netns.NS) <-chan netip.Addr {
	t.Helper()
	from := make(chan netip.Addr, 100)
	netnstest.ServeUDP(t, inet, "udp4", netip.MustParseAddrPort("198.18.0.1:9999"), func(_ *net.UDPConn, _ []byte, src netip.AddrPort) {
		from <- src.Addr().Unmap()
	})
	return from
}

// sendUntil sends from the client until the server reports a packet, and
// returns the source address it saw.
func sendUntil(t *testing.T, c *net.UDPConn, from <-chan netip.Addr) netip.Addr {
	t.Helper()
	for range 20 {
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-from:
			return a
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Fatal("no packet reached the internet host in 5s")
	return netip.Addr{}
}

func conntrackList(t *testing.T, edge *netns.NS) string {
	t.Helper()
	out, err := edge.Run(context.Background(), "conntrack", "-L", "-p", "udp", "--dport", "9999")
	if err != nil && !strings.Contains(err.Error(), "0 flow entries") {
		t.Fatal(err)
	}
	return out2s(out)
}

func out2s(b []byte) string { return strings.TrimSpace(string(b)) }

var (
	inside  = netip.MustParsePrefix("192.0.2.0/24")
	addrA   = netip.MustParseAddr("198.51.100.1")
	addrB   = netip.MustParseAddr("203.0.113.1")
	ruleA   = Rule{Device: "ua", Inside: inside, Source: addrA}
	ruleB   = Rule{Device: "ub", Inside: inside} // masquerade
	ruleAM  = Rule{Device: "ua", Inside: inside}
	ruleA25 = Rule{Device: "ua", Inside: netip.MustParsePrefix("192.0.2.128/25"), Source: addrA}
)

// TestFailoverFlushesConntrack is the IPv4 PA-mode failover: a flow from the
// LAN is NATed via uplink A; routes move to B; until FlushUplink(A) its
// packets keep A's address (the entry pins it), after it they carry B's.
func TestFailoverFlushesConntrack(t *testing.T) {
	tp := newTopo(t)
	ctx := context.Background()
	// A table someone else owns, which nothing here may change (its
	// counters count our packets: compare without state).
	netnstest.Run(t, tp.Edge, "nft", "add table ip other; add chain ip other c { type filter hook postrouting priority 0; }; add rule ip other c counter")
	other := netnstest.Run(t, tp.Edge, "nft", "-s", "-a", "list", "table", "ip", "other")

	n := New(Options{NetNS: tp.Edge.Path()})
	t.Cleanup(func() { _ = n.Delete() })
	got, err := n.Set(ctx, []Rule{ruleB, ruleA})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Rule{ruleA, ruleB}, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Set returned (-want +got):\n%s", diff)
	}

	from := udpServer(t, tp.Inet)
	var client *net.UDPConn
	if err := tp.LAN.Do(func() (err error) {
		client, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("192.0.2.2:40000")), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.18.0.1:9999")))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	if src := sendUntil(t, client, from); src != addrA {
		t.Fatalf("flow via A arrives from %s, want %s", src, addrA)
	}
	if ct := conntrackList(t, tp.Edge); !strings.Contains(ct, "src=192.0.2.2") || !strings.Contains(ct, "dst=198.51.100.1") {
		t.Fatalf("no conntrack entry NATed to A:\n%s", ct)
	}

	// Failover: the routes move to B. The entry still pins A's address.
	netnstest.Run(t, tp.Edge, "ip", "route", "replace", "198.18.0.1/32", "via", "203.0.113.2")
	if src := sendUntil(t, client, from); src != addrA {
		t.Fatalf("before the flush the flow arrives from %s; the test expects conntrack to pin %s", src, addrA)
	}

	deleted, err := n.FlushUplink(ctx, "ua")
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 1 {
		t.Errorf("FlushUplink deleted %d entries, want 1", deleted)
	}
	if ct := conntrackList(t, tp.Edge); strings.Contains(ct, "dst=198.51.100.1") {
		t.Fatalf("entry NATed to A still there:\n%s", ct)
	}
	if src := sendUntil(t, client, from); src != addrB {
		t.Fatalf("after the flush the flow arrives from %s, want B's %s", src, addrB)
	}
	if ct := conntrackList(t, tp.Edge); !strings.Contains(ct, "dst=203.0.113.1") {
		t.Errorf("no conntrack entry NATed to B:\n%s", ct)
	}
	// Flushing B (masquerade: B's address read from the device) deletes the
	// new entry; flushing A again finds nothing.
	if d, err := n.FlushUplink(ctx, "ua"); err != nil || d != 0 {
		t.Errorf("second FlushUplink(ua) = %d, %v; want 0", d, err)
	}
	if d, err := n.FlushUplink(ctx, "ub"); err != nil || d != 1 {
		t.Errorf("FlushUplink(ub) = %d, %v; want 1", d, err)
	}

	if err := n.Delete(); err != nil {
		t.Fatal(err)
	}
	tables := netnstest.Run(t, tp.Edge, "nft", "list", "tables")
	if strings.Contains(tables, DefaultTable) {
		t.Errorf("table left after Delete:\n%s", tables)
	}
	if after := netnstest.Run(t, tp.Edge, "nft", "-s", "-a", "list", "table", "ip", "other"); after != other {
		t.Errorf("table ip other changed:\nbefore %s\nafter %s", other, after)
	}
}

// TestSetTransitions applies rule sets in random order: each Set leaves
// exactly its rules (read back by us and printed by nft), and a repeated
// Set leaves the kernel's rules untouched (same handles).
func TestSetTransitions(t *testing.T) {
	testenv.Need(t, "ip", "nft")
	edge := netnstest.New(t, "n44set-"+netns.UniqueID())
	netnstest.Run(t, edge, "ip", "link", "add", "ua", "type", "veth", "peer", "name", "ub")
	ctx := context.Background()
	n := New(Options{NetNS: edge.Path()})
	states := [][]Rule{
		{ruleA, ruleB},
		{ruleAM, ruleB},
		{ruleA25},
		{},
		{ruleA},
		{ruleB, ruleA25},
	}
	order := rand.Perm(len(states))
	order = append(order, order...) // every state also follows another
	t.Logf("order %v", order)
	for _, i := range order {
		want := slices.Clone(states[i])
		sortRules(want)
		got, err := n.Set(ctx, states[i])
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("state %d: Set returned %v, want %v", i, got, want)
		}
		listed := netnstest.Run(t, edge, "nft", "-s", "-a", "list", "table", "ip", DefaultTable)
		if c := strings.Count(listed, "ip saddr"); c != len(want) {
			t.Errorf("state %d: nft lists %d rules, want %d:\n%s", i, c, len(want), listed)
		}
		for _, r := range want {
			text := fmt.Sprintf("oifname %q ip saddr %s counter", r.Device, r.Inside)
			if r.Masquerade() {
				text += " masquerade"
			} else {
				text += " snat to " + r.Source.String()
			}
			if !strings.Contains(listed, text) {
				t.Errorf("state %d: nft does not list %q:\n%s", i, text, listed)
			}
		}
		if _, err := n.Set(ctx, states[i]); err != nil {
			t.Fatal(err)
		}
		if again := netnstest.Run(t, edge, "nft", "-s", "-a", "list", "table", "ip", DefaultTable); again != listed {
			t.Errorf("state %d: repeated Set changed the kernel:\nbefore %s\nafter %s", i, listed, again)
		}
	}
	// A rule someone put into our table by hand is not ours to keep.
	netnstest.Run(t, edge, "nft", "add", "rule", "ip", DefaultTable, "postrouting", "meta", "mark", "0x7", "counter")
	if got, err := n.Set(ctx, states[0]); err != nil || len(got) != len(states[0]) {
		t.Fatalf("Set over a foreign rule: %v, %v", got, err)
	}
	if listed := netnstest.Run(t, edge, "nft", "-s", "list", "table", "ip", DefaultTable); strings.Contains(listed, "meta mark") {
		t.Errorf("foreign rule kept in our table:\n%s", listed)
	}

	if err := n.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := n.Delete(); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

package returnpath

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/netns/netnstest"
	"github.com/multihomed/multihomed/internal/testenv"
)

// topo is lan -- edge ==(ua, ub)== inet, IPv6 only and untranslated (the
// rules do not care who translated): the LAN server fd00:1::2 behind the
// edge, whose default route is via uplink A; a table per uplink with only
// its default, selected by the uplink's mark (what fib's probe tables
// are). The internet host reaches the LAN through uplink B and drops the
// server's answers (port 8080) arriving through A, as ISP A's ingress filter drops a
// source from another ISP's prefix.
type topo struct {
	netnstest.TwoUplinks
	table string // edge's nftables table for this test
}

var (
	inside  = netip.MustParsePrefix("fd00:1::/64")
	server  = netip.MustParseAddr("fd00:1::2")
	client  = netip.MustParseAddr("2001:db8:9::1") // the internet host, off the edge's links
	uplinkA = Uplink{Device: "ua", Mark: 0x4d480100}
	uplinkB = Uplink{Device: "ub", Mark: 0x4d480101}
)

const greeting = "hello from the LAN"

func newTopo(t *testing.T) topo {
	t.Helper()
	testenv.Need(t, "ip", "nft")
	tp := topo{TwoUplinks: netnstest.NewTwoUplinks(t, "rp"), table: "mh_return_test"}
	netnstest.AddAddr(t, tp.LAN, "eth0", "fd00:1::2/64")
	netnstest.AddAddr(t, tp.Edge, "lan", "fd00:1::1/64")
	netnstest.AddAddr(t, tp.Edge, "ua", "2001:db8:a::1/64")
	netnstest.AddAddr(t, tp.Inet, "ia", "2001:db8:a::2/64")
	netnstest.AddAddr(t, tp.Edge, "ub", "2001:db8:b::1/64")
	netnstest.AddAddr(t, tp.Inet, "ib", "2001:db8:b::2/64")
	netnstest.AddAddr(t, tp.Inet, "ib", "2001:db8:9::1/128")
	netnstest.Run(t, tp.LAN, "ip", "-6", "route", "add", "default", "via", "fd00:1::1")
	netnstest.Run(t, tp.Edge, "ip", "-6", "route", "add", "default", "via", "2001:db8:a::2", "dev", "ua")
	for _, p := range []struct {
		table, gw, dev string
		mark           uint32
	}{{"4800", "2001:db8:a::2", "ua", uplinkA.Mark}, {"4801", "2001:db8:b::2", "ub", uplinkB.Mark}} {
		netnstest.Run(t, tp.Edge, "ip", "-6", "route", "add", "default", "via", p.gw, "dev", p.dev, "table", p.table)
		netnstest.Run(t, tp.Edge, "ip", "-6", "rule", "add", "fwmark", fmt.Sprintf("%#x", p.mark), "lookup", p.table, "priority", "1000")
	}
	netnstest.Run(t, tp.Inet, "ip", "-6", "route", "add", "fd00:1::/64", "via", "2001:db8:b::1", "src", client.String())
	netnstest.Run(t, tp.Inet, "nft", "add table ip6 isp; add chain ip6 isp in { type filter hook prerouting priority 0; }; add rule ip6 isp in iifname ia ip6 saddr fd00:1::/64 tcp sport 8080 counter drop; add rule ip6 isp in iifname ia ip6 saddr fd00:1::/64 udp sport 8082 counter drop")
	// Someone else's table on the edge, which we must never change.
	netnstest.Run(t, tp.Edge, "nft", "add table ip6 other; add chain ip6 other pre { type filter hook prerouting priority -140; }; add rule ip6 other pre meta mark 0x1 counter; add set ip6 other s { type ipv6_addr; }")
	stop, err := lab.ServeGreeting(tp.LAN, server, 8080, greeting)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return tp
}

func (tp topo) steering(udp bool) *Steering {
	return New(Options{Table: tp.table, NetNS: tp.Edge.Path(), Timeout: time.Minute, Size: 1024, UDP: udp})
}

// dial connects from the internet host to the LAN server (through B, the
// inet host's only route to it).
func (tp topo) dial() error {
	_, err := lab.DialGreeting(tp.Inet, []netip.Addr{server}, 8080, greeting, 2*time.Second)
	return err
}

// elements lists the connections remembered for u.
func (tp topo) elements(t *testing.T, u Uplink) string {
	t.Helper()
	set := unit{Uplink: u, inside: inside, timeout: time.Minute, size: 1024}.setName()
	return netnstest.Run(t, tp.Edge, "nft", "list", "set", "ip6", tp.table, set)
}

// TestRepliesLeaveByArrivalUplink: while egress is via A, a connection
// that came in through B fails without the rules (its answer leaves
// through A, where it is dropped) and succeeds with them; only connections
// opened from outside are remembered, and only in the set of the uplink
// they came in by.
func TestRepliesLeaveByArrivalUplink(t *testing.T) {
	tp := newTopo(t)
	if err := tp.dial(); err == nil {
		t.Fatal("a connection through B succeeded without the rules: the topology does not show the asymmetric return path")
	}
	drops := netnstest.Run(t, tp.Inet, "nft", "list", "chain", "ip6", "isp", "in")
	if regexp.MustCompile(`tcp sport 8080 counter packets 0 `).MatchString(drops) {
		t.Fatalf("the failed connection's answers were not dropped at the internet host's A side:\n%s", drops)
	}
	s := tp.steering(false)
	if _, err := s.Set(context.Background(), inside, []Uplink{uplinkA, uplinkB}); err != nil {
		t.Fatal(err)
	}
	if err := tp.dial(); err != nil {
		t.Fatalf("a connection through B fails with the rules: %v", err)
	}
	if b := tp.elements(t, uplinkB); !strings.Contains(b, client.String()) || !strings.Contains(b, server.String()) {
		t.Errorf("B's set does not hold the connection:\n%s", b)
	}
	if a := tp.elements(t, uplinkA); strings.Contains(a, client.String()) {
		t.Errorf("A's set holds a connection that came in through B:\n%s", a)
	}
	// A connection the LAN opens leaves by egress (A); its answers enter
	// through B (the internet host's route) with SYN+ACK: not remembered.
	stop, err := lab.ServeGreeting(tp.Inet, client, 8081, greeting)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if _, err := lab.DialGreeting(tp.LAN, []netip.Addr{client}, 8081, greeting, 2*time.Second); err != nil {
		t.Fatalf("outbound connection: %v", err)
	}
	if b := tp.elements(t, uplinkB); strings.Contains(b, ". 8081 .") || strings.Count(b, client.String()) != 1 {
		t.Errorf("B's set holds more than the one inbound connection:\n%s", b)
	}
}

// TestSetTransitions: every uplink set, applied in random order, leaves
// exactly its uplinks; a repeated Set changes nothing (same rule handles,
// remembered connections kept); a rule someone put in our table goes; the
// other table is never changed, not even by Delete.
func TestSetTransitions(t *testing.T) {
	tp := newTopo(t)
	ctx := context.Background()
	other := netnstest.Run(t, tp.Edge, "nft", "list", "table", "ip6", "other")
	s := tp.steering(false)
	states := [][]Uplink{{uplinkA, uplinkB}, {uplinkB}, {uplinkA}, nil}
	for i := range 12 {
		want := states[rand.IntN(len(states))]
		got, err := s.Set(ctx, inside, want)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("step %d: uplinks (-want +got):\n%s", i, diff)
		}
		before := netnstest.Run(t, tp.Edge, "nft", "-a", "list", "table", "ip6", tp.table)
		if _, err := s.Set(ctx, inside, want); err != nil {
			t.Fatal(err)
		}
		if after := netnstest.Run(t, tp.Edge, "nft", "-a", "list", "table", "ip6", tp.table); after != before {
			t.Fatalf("step %d: a repeated Set changed the table:\nbefore:\n%s\nafter:\n%s", i, before, after)
		}
	}
	if _, err := s.Set(ctx, inside, []Uplink{uplinkA, uplinkB}); err != nil {
		t.Fatal(err)
	}
	if err := tp.dial(); err != nil {
		t.Fatal(err)
	}
	netnstest.Run(t, tp.Edge, "nft", "add", "rule", "ip6", tp.table, "prerouting", "counter", "accept", "comment", `"someone else's"`)
	if _, err := s.Set(ctx, inside, []Uplink{uplinkA, uplinkB}); err != nil {
		t.Fatal(err)
	}
	table := netnstest.Run(t, tp.Edge, "nft", "list", "table", "ip6", tp.table)
	if strings.Contains(table, "someone else") {
		t.Errorf("the foreign rule is still in our table:\n%s", table)
	}
	if b := tp.elements(t, uplinkB); !strings.Contains(b, client.String()) {
		t.Errorf("removing the foreign rule lost B's remembered connection:\n%s", b)
	}
	if got := netnstest.Run(t, tp.Edge, "nft", "list", "table", "ip6", "other"); got != other {
		t.Errorf("the other table changed:\nbefore:\n%s\nafter:\n%s", other, got)
	}
	if err := s.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(); err != nil {
		t.Fatalf("a second Delete: %v", err)
	}
	if out, err := tp.Edge.Run(ctx, "nft", "list", "table", "ip6", tp.table); err == nil {
		t.Errorf("our table is still there after Delete:\n%s", out)
	}
	if got := netnstest.Run(t, tp.Edge, "nft", "list", "table", "ip6", "other"); got != other {
		t.Errorf("Delete changed the other table:\nbefore:\n%s\nafter:\n%s", other, got)
	}
}

// udpEcho answers every datagram to fd00:1::2:8082 in the LAN namespace.
func udpEcho(t *testing.T, lan *netns.NS) {
	t.Helper()
	netnstest.ServeUDP(t, lan, "udp6", netip.AddrPortFrom(server, 8082), func(conn *net.UDPConn, payload []byte, from netip.AddrPort) {
		_, _ = conn.WriteToUDPAddrPort(payload, from)
	})
}

// udpDrops is how many of the LAN's UDP answers the internet host dropped
// on its A side.
func (tp topo) udpDrops(t *testing.T) string {
	t.Helper()
	out := netnstest.Run(t, tp.Inet, "nft", "list", "chain", "ip6", "isp", "in")
	m := regexp.MustCompile(`udp sport 8082 counter packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no UDP drop counter in:\n%s", out)
	}
	return m[1]
}

// TestUDP: with Options.UDP a UDP flow opened from outside through B is
// answered through B; without it the answer leaves by egress (A), where
// the internet host drops it.
func TestUDP(t *testing.T) {
	tp := newTopo(t)
	udpEcho(t, tp.LAN)
	var c *net.UDPConn
	if err := tp.Inet.Do(func() (err error) {
		c, err = net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(server, 8082)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Close() }() // the c of the moment
	echo := func() error {
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 16)
		_, err := c.Read(buf)
		return err
	}
	ctx := context.Background()
	if _, err := tp.steering(false).Set(ctx, inside, []Uplink{uplinkA, uplinkB}); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err == nil {
		t.Fatal("a UDP answer came back without Options.UDP: the topology does not show the asymmetric return path")
	}
	if d := tp.udpDrops(t); d == "0" {
		t.Fatal("the unanswered datagram's answer was not dropped on the A side: the test shows nothing")
	}
	if _, err := tp.steering(true).Set(ctx, inside, []Uplink{uplinkA, uplinkB}); err != nil {
		t.Fatal(err)
	}
	// The flow is new to the rules but not to conntrack (the first
	// datagram created its entry): a fresh flow from another port.
	c.Close()
	if err := tp.Inet.Do(func() (err error) {
		c, err = net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(server, 8082)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	before := tp.udpDrops(t)
	if err := echo(); err != nil {
		t.Fatalf("no UDP answer with Options.UDP: %v", err)
	}
	if after := tp.udpDrops(t); after != before {
		t.Errorf("answers dropped on the A side went from %s to %s", before, after)
	}
}

package netnstest

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/multihomed/multihomed/internal/netns"
)

// New creates the namespace name and removes it when t ends. Build name
// from netns.UniqueID: test packages run in parallel.
func New(t testing.TB, name string) *netns.NS {
	t.Helper()
	n, err := netns.New(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// Run runs args inside n and returns the standard output; a failure fails
// t with the command and its standard error.
func Run(t testing.TB, n *netns.NS, args ...string) string {
	t.Helper()
	out, err := n.Run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// ServeUDP listens on addr inside n (network "udp4" or "udp6") and calls
// handle with each datagram, from a goroutine of its own, until t ends;
// then it closes the socket and waits for that goroutine. handle may
// answer on conn; the payload is reused after handle returns.
func ServeUDP(t testing.TB, n *netns.NS, network string, addr netip.AddrPort, handle func(conn *net.UDPConn, payload []byte, from netip.AddrPort)) {
	t.Helper()
	var conn *net.UDPConn
	if err := n.Do(func() (err error) {
		conn, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			k, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			handle(conn, buf[:k], from)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
}

// AddAddr assigns prefix (an address with its length, such as
// "192.0.2.1/24") to dev in n; a failure fails t.
func AddAddr(t testing.TB, n *netns.NS, dev, prefix string) {
	t.Helper()
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAddr(context.Background(), dev, p); err != nil {
		t.Fatal(err)
	}
}

// TwoUplinks is lan -- edge ==(ua, ub)== inet: a LAN host behind an edge
// with two uplinks to one internet host. The links, by device name:
// lan's eth0 to edge's lan, edge's ua to inet's ia, edge's ub to inet's
// ib. All are up and have no addresses: each test chooses its own plan.
type TwoUplinks struct {
	LAN, Edge, Inet *netns.NS
}

// NewTwoUplinks builds TwoUplinks in namespaces prefix+"lan-"+id,
// prefix+"edge-"+id and prefix+"inet-"+id (id from netns.UniqueID), all
// removed when t ends.
func NewTwoUplinks(t testing.TB, prefix string) TwoUplinks {
	t.Helper()
	id := netns.UniqueID()
	tu := TwoUplinks{LAN: New(t, prefix+"lan-"+id), Edge: New(t, prefix+"edge-"+id), Inet: New(t, prefix+"inet-"+id)}
	for _, l := range []struct {
		a    *netns.NS
		aDev string
		b    *netns.NS
		bDev string
	}{{tu.LAN, "eth0", tu.Edge, "lan"}, {tu.Edge, "ua", tu.Inet, "ia"}, {tu.Edge, "ub", tu.Inet, "ib"}} {
		if err := netns.Veth(context.Background(), l.a, l.aDev, l.b, l.bDev); err != nil {
			t.Fatal(err)
		}
	}
	return tu
}

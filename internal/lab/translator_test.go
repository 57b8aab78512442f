package lab

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestUpTranslator builds the translator topology and checks what the NPTv6
// tests rely on: the edge reaches both hosts over the veths, only the edge
// forwards, the recorded MACs are the interfaces' own, the received-packets
// counter moves with traffic, and Close removes every namespace.
func TestUpTranslator(t *testing.T) {
	testenv.Need(t, "ip", "ping", "sysctl")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := UpTranslator(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })

	rx0, err := RxPackets(ctx, tr.Out, tr.OutIf)
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{NPTLANHost.String(), NPTOutHost.String()} {
		if _, err := tr.Edge.Run(ctx, "ping", "-6", "-c1", "-W2", dst); err != nil {
			t.Errorf("edge to %s: %v", dst, err)
		}
	}
	rx1, err := RxPackets(ctx, tr.Out, tr.OutIf)
	if err != nil {
		t.Fatal(err)
	}
	if rx1 <= rx0 {
		t.Errorf("out host's %s received %d packets before the ping and %d after; want more", tr.OutIf, rx0, rx1)
	}

	for _, c := range []struct {
		ns   *netns.NS
		want string
	}{{tr.LAN, "0"}, {tr.Edge, "1"}, {tr.Out, "0"}} {
		out, err := c.ns.Run(ctx, "sysctl", "-n", "net.ipv6.conf.all.forwarding")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != c.want {
			t.Errorf("%s: IPv6 forwarding %s, want %s", c.ns.Name, got, c.want)
		}
	}

	for _, m := range []struct {
		ns  *netns.NS
		dev string
		mac net.HardwareAddr
	}{{tr.LAN, tr.LANIf, tr.LANMAC}, {tr.Edge, tr.EdgeLANIf, tr.EdgeLANMAC}, {tr.Edge, tr.EdgeUpIf, tr.EdgeUpMAC}, {tr.Out, tr.OutIf, tr.OutMAC}} {
		out, err := m.ns.Run(ctx, "ip", "-o", "link", "show", "dev", m.dev)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.mac) != 6 || !strings.Contains(string(out), "link/ether "+m.mac.String()) {
			t.Errorf("recorded MAC %q of %s is not the interface's: %s", m.mac, m.dev, out)
		}
	}

	names := []string{tr.LAN.Name, tr.Edge.Name, tr.Out.Name}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := os.Stat("/var/run/netns/" + n); !os.IsNotExist(err) {
			t.Errorf("namespace %s still there after Close: %v", n, err)
		}
	}
}

package nptv6

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/lab"
)

// TestPathMTUDiscovery: the LAN link is narrower than the uplink. A packet
// from the outside host to the LAN host that does not fit makes the edge
// itself send Packet Too Big; its source is the edge's uplink address, not
// an internal one, and the packet it quotes was already translated to the
// internal address. The eBPF backend translates that quoted address back,
// so the outside host records the smaller path MTU for the address it
// really used. ip6t_NPT does not (its SNPT rule only matches internal
// sources): the test asserts that too, so the documented difference stays
// true.
func TestPathMTUDiscovery(t *testing.T) {
	for _, b := range []backend{ebpfBackend(), kernelBackend()} {
		t.Run(b.name, func(t *testing.T) {
			requirePrivileged(t, b.tools...)
			topo := newTopology(t)
			ctx := context.Background()
			for _, c := range [][]string{
				{"ip", "link", "set", topo.EdgeLANIf, "mtu", "1280"},
			} {
				if _, err := topo.Edge.Run(ctx, c...); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := topo.LAN.Run(ctx, "ip", "link", "set", topo.LANIf, "mtu", "1280"); err != nil {
				t.Fatal(err)
			}
			dp := b.new(t, topo)
			ms := edgeMappings(topo)
			setOrFatal(t, dp, ms)
			tr, _ := NewTranslator(ms[0])
			ext, _ := tr.Outbound(lab.NPTLANHost)

			var cli *net.UDPConn
			inNS(t, topo.Out, func() (err error) {
				cli, err = net.DialUDP("udp6", nil, &net.UDPAddr{IP: ext.AsSlice(), Port: 7500})
				if err != nil {
					return err
				}
				// Do not fragment locally: let the path say what fits.
				rc, err := cli.SyscallConn()
				if err != nil {
					return err
				}
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
				}); err != nil {
					return err
				}
				return serr
			})
			defer cli.Close()
			if _, err := cli.Write(make([]byte, 1400)); err != nil {
				t.Fatal(err)
			}
			// Bounded poll on the outside host's route cache.
			learned := false
			deadline := time.Now().Add(3 * time.Second)
			for !learned && time.Now().Before(deadline) {
				out, err := topo.Out.Run(ctx, "ip", "-6", "route", "get", ext.String())
				if err != nil {
					t.Fatal(err)
				}
				learned = strings.Contains(string(out), "mtu 1280")
				if !learned {
					select {
					case <-time.After(20 * time.Millisecond):
					case <-ctx.Done():
					}
				}
			}
			switch {
			case b.name == "ebpf" && !learned:
				t.Fatalf("the outside host did not learn path MTU 1280 toward %s: the edge's Packet Too Big quotes the wrong address", ext)
			case b.name == "kernel" && learned:
				t.Fatalf("ip6t_NPT now translates the quoted address of the edge's own errors: update docs/nptv6.md and the differential test")
			}
		})
	}
}

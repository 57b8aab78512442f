package nptv6

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// requirePrivileged skips outside CI when the test cannot run here, and
// fails in CI (CI=true must run every integration test).
func requirePrivileged(t *testing.T, tools ...string) {
	t.Helper()
	var missing string
	if os.Geteuid() != 0 {
		missing = "root (network namespaces, ip6tables, eBPF)"
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil && missing == "" {
			missing = tool + " (Debian packages: iproute2, iptables)"
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") == "" {
		t.Skipf("integration test needs %s; skipped because CI is not set", missing)
	}
	t.Fatalf("integration test needs %s, and CI is set: it must run", missing)
}

func newTopology(t *testing.T) *lab.Translator {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo, err := lab.UpTranslator(ctx, "")
	if err != nil {
		t.Fatalf("build namespaces: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("remove namespaces: %v", err)
		}
	})
	return topo
}

// backend builds a datapath for the edge namespace of topo.
type backend struct {
	name  string
	tools []string
	new   func(t *testing.T, topo *lab.Translator) Datapath
}

func kernelBackend() backend { return kernelBackendCmd("kernel", "ip6tables") }

// kernelBackendCmd uses a given ip6tables variant (ip6tables-nft or
// ip6tables-legacy).
func kernelBackendCmd(name, cmd string) backend {
	return backend{name: name, tools: []string{cmd}, new: func(t *testing.T, topo *lab.Translator) Datapath {
		k, err := NewKernel(KernelOptions{NetNS: topo.Edge.Path(), Command: cmd})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := k.Purge(context.Background()); err != nil {
				t.Errorf("purge: %v", err)
			}
		})
		return k
	}}
}

func allBackends() []backend {
	return []backend{kernelBackend(), ebpfBackend(), ebpfBackendMode("ebpf-tc", true)}
}

func edgeMappings(topo *lab.Translator) []Mapping {
	return []Mapping{{Interface: topo.EdgeUpIf, Internal: lab.NPTInternal, External: lab.NPTPA}}
}

func setOrFatal(t *testing.T, dp Datapath, ms []Mapping) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := dp.Set(ctx, ms)
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	if want := SortMappings(ms); !equalMappings(got, want) {
		t.Fatalf("Set reached %v, want %v", got, want)
	}
}

func equalMappings(a, b []Mapping) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDatapathTraffic: UDP, TCP and ICMPv6 from the ULA host reach the out
// host with the translated source, the receiving kernels accept them (so
// checksums are right), replies come back, and an ICMPv6 error from beyond
// the edge reaches the LAN socket (so its embedded header was translated).
func TestDatapathTraffic(t *testing.T) {
	for _, b := range allBackends() {
		t.Run(b.name, func(t *testing.T) {
			requirePrivileged(t, b.tools...)
			topo := newTopology(t)
			dp := b.new(t, topo)
			ms := edgeMappings(topo)
			setOrFatal(t, dp, ms)
			// Set twice: idempotent.
			setOrFatal(t, dp, ms)
			tr, err := NewTranslator(ms[0])
			if err != nil {
				t.Fatal(err)
			}
			ext, err := tr.Outbound(lab.NPTLANHost)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("udp", func(t *testing.T) { checkUDP(t, topo, ext) })
			t.Run("tcp", func(t *testing.T) { checkTCP(t, topo, ext) })
			t.Run("icmp-echo", func(t *testing.T) { checkEcho(t, topo, ext) })
			t.Run("icmp-error", func(t *testing.T) { checkICMPError(t, topo) })

			ctx := context.Background()
			cs, err := dp.Counters(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 || cs[0].OutPackets == 0 || cs[0].InPackets == 0 {
				t.Errorf("counters after traffic: %+v, want one mapping with packets both ways", cs)
			}
			// Removing the mapping stops translation: the out host sees
			// the ULA source (and cannot answer it).
			if got, err := dp.Set(ctx, nil); err != nil || len(got) != 0 {
				t.Fatalf("Set(nil) = %v, %v", got, err)
			}
			src := udpSourceSeen(t, topo)
			if src != lab.NPTLANHost {
				t.Errorf("after removing the mapping the out host sees %s, want the untranslated %s", src, lab.NPTLANHost)
			}
		})
	}
}

func inNS(t *testing.T, ns *netns.NS, fn func() error) {
	t.Helper()
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}

const ioTimeout = 5 * time.Second

// outServer listens on the out host's address, port port. The caller
// closes it.
func outServer(t *testing.T, topo *lab.Translator, port int) *net.UDPConn {
	t.Helper()
	var srv *net.UDPConn
	inNS(t, topo.Out, func() (err error) {
		srv, err = net.ListenUDP("udp6", &net.UDPAddr{IP: lab.NPTOutHost.AsSlice(), Port: port})
		return err
	})
	return srv
}

// lanClient is a UDP socket of the LAN host connected to the out host's
// address, port port. The caller closes it.
func lanClient(t *testing.T, topo *lab.Translator, port int) *net.UDPConn {
	t.Helper()
	var cli *net.UDPConn
	inNS(t, topo.LAN, func() (err error) {
		cli, err = net.DialUDP("udp6", nil, &net.UDPAddr{IP: lab.NPTOutHost.AsSlice(), Port: port})
		return err
	})
	return cli
}

func checkUDP(t *testing.T, topo *lab.Translator, ext netip.Addr) {
	srv := outServer(t, topo, 7001)
	defer srv.Close()
	cli := lanClient(t, topo, 7001)
	defer cli.Close()
	deadline := time.Now().Add(ioTimeout)
	srv.SetDeadline(deadline)
	cli.SetDeadline(deadline)
	if _, err := cli.Write([]byte("nptv6 udp")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("out host: no UDP datagram: %v", err)
	}
	if string(buf[:n]) != "nptv6 udp" || from.Addr() != ext {
		t.Fatalf("out host got %q from %s, want %q from %s", buf[:n], from, "nptv6 udp", ext)
	}
	if _, err := srv.WriteToUDPAddrPort([]byte("reply"), from); err != nil {
		t.Fatal(err)
	}
	n, err = cli.Read(buf)
	if err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("LAN host: reply %q, %v", buf[:n], err)
	}
}

// udpSourceSeen sends one datagram from the LAN host and returns the source
// the out host sees.
func udpSourceSeen(t *testing.T, topo *lab.Translator) netip.Addr {
	srv := outServer(t, topo, 7009)
	defer srv.Close()
	cli := lanClient(t, topo, 7009)
	defer cli.Close()
	srv.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := cli.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_, from, err := srv.ReadFromUDPAddrPort(make([]byte, 10))
	if err != nil {
		t.Fatalf("out host: no datagram: %v", err)
	}
	return from.Addr()
}

func checkTCP(t *testing.T, topo *lab.Translator, ext netip.Addr) {
	var ln net.Listener
	inNS(t, topo.Out, func() (err error) {
		ln, err = net.Listen("tcp6", "["+lab.NPTOutHost.String()+"]:7002")
		return err
	})
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		acc <- accepted{c, err}
	}()
	var c net.Conn
	inNS(t, topo.LAN, func() (err error) {
		d := net.Dialer{Timeout: ioTimeout}
		c, err = d.Dial("tcp6", "["+lab.NPTOutHost.String()+"]:7002")
		return err
	})
	defer c.Close()
	var a accepted
	select {
	case a = <-acc:
	case <-time.After(ioTimeout):
		t.Fatal("out host: no TCP connection accepted")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	if got := a.c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != ext {
		t.Errorf("out host sees TCP peer %s, want %s", got, ext)
	}
	payload := make([]byte, 256<<10) // several segments, both ways
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	a.c.SetDeadline(time.Now().Add(ioTimeout))
	c.SetDeadline(time.Now().Add(ioTimeout))
	go func() {
		a.c.Write(payload)
		a.c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || len(got) != len(payload) {
		t.Fatalf("LAN host read %d bytes, %v; want %d", len(got), err, len(payload))
	}
	for i := range got {
		if got[i] != payload[i] {
			t.Fatalf("byte %d differs", i)
		}
	}
}

// checkEcho sends an ICMPv6 echo request from the LAN host and waits for
// the reply; a raw socket on the out host checks the request's source.
func checkEcho(t *testing.T, topo *lab.Translator, ext netip.Addr) {
	var lanc, outc net.PacketConn
	inNS(t, topo.Out, func() (err error) {
		outc, err = net.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	})
	defer outc.Close()
	inNS(t, topo.LAN, func() (err error) {
		lanc, err = net.ListenPacket("ip6:ipv6-icmp", lab.NPTLANHost.String())
		return err
	})
	defer lanc.Close()
	id := uint16(os.Getpid())
	req := []byte{128, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'n', 'p', 't', 'v', '6'}
	if _, err := lanc.WriteTo(req, &net.IPAddr{IP: lab.NPTOutHost.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(ioTimeout)
	lanc.SetReadDeadline(deadline)
	outc.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, from, err := outc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("out host: no echo request: %v", err)
		}
		if n >= 8 && buf[0] == 128 && buf[4] == byte(id>>8) && buf[5] == byte(id) {
			if got, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP); got != ext {
				t.Errorf("echo request from %s, want %s", got, ext)
			}
			break
		}
	}
	for {
		n, _, err := lanc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("LAN host: no echo reply: %v", err)
		}
		if n >= 8 && buf[0] == 129 && buf[4] == byte(id>>8) && buf[5] == byte(id) {
			return
		}
	}
}

// checkICMPError: a connected UDP socket on the LAN host sends to a closed
// port of the out host. The out host answers port unreachable; the LAN
// kernel reports ECONNREFUSED only if the error's embedded packet names the
// socket's own (internal) address, i.e. only if the translator rewrote it.
func checkICMPError(t *testing.T, topo *lab.Translator) {
	cli := lanClient(t, topo, 7999)
	defer cli.Close()
	cli.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := cli.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	_, err := cli.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("LAN host read: %v, want ECONNREFUSED from the translated port-unreachable error", err)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

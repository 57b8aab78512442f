package health

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// These tests run the real probers against responders on loopback (no
// mark, no device: pinning is proven in the namespace test). Targets on
// loopback bypass Validate, which rightly refuses them in configuration.

func loopbackUplink() Uplink { return Uplink{Name: "lo", Health: Config{}} }

func probeOnce(t *testing.T, tg Target) (time.Duration, error) {
	t.Helper()
	c := Config{Targets: []Target{tg}}
	c.ApplyDefaults(-1)
	p, err := NewProber(loopbackUplink(), c.Targets[0])
	if err != nil {
		t.Fatalf("NewProber(%s): %v", tg, err)
	}
	defer func() {
		if c, ok := p.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return p.Probe(ctx)
}

func TestICMPMatches(t *testing.T) {
	p := newICMPProber(pin{dst: mustAddr("2001:db8:9000:1::10")})
	p.seq = 7
	reply := func(typ icmp.Type, id, seq int, data []byte) []byte {
		b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id := int(p.id)
	if !p.matches(false, reply(ipv6.ICMPTypeEchoReply, id, 7, p.cookie[:])) {
		t.Fatal("own reply not matched")
	}
	for name, b := range map[string][]byte{
		"other identifier": reply(ipv6.ICMPTypeEchoReply, id^1, 7, p.cookie[:]),
		"old sequence":     reply(ipv6.ICMPTypeEchoReply, id, 6, p.cookie[:]),
		"other cookie":     reply(ipv6.ICMPTypeEchoReply, id, 7, []byte("12345678")),
		"echo request":     reply(ipv6.ICMPTypeEchoRequest, id, 7, p.cookie[:]),
		"truncated":        reply(ipv6.ICMPTypeEchoReply, id, 7, p.cookie[:])[:12],
	} {
		if p.matches(false, b) {
			t.Errorf("%s: reply matched", name)
		}
	}
	if q := newICMPProber(p.pin); q.id == p.id {
		t.Fatal("two probers got the same identifier")
	}

	// IPv4: the raw socket hands over the IP header too.
	p4 := newICMPProber(pin{dst: mustAddr("203.0.113.10")})
	p4.seq = 9
	hdr := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 203, 0, 113, 10, 198, 18, 1, 2}
	r4 := append(hdr, reply(ipv4.ICMPTypeEchoReply, int(p4.id), 9, p4.cookie[:])...)
	if !p4.matches(true, r4) {
		t.Fatal("own IPv4 reply not matched")
	}
	if p4.matches(true, r4[20:]) {
		t.Fatal("IPv4 reply without IP header matched")
	}
	if p4.matches(true, append(hdr, reply(ipv4.ICMPTypeEcho, int(p4.id), 9, p4.cookie[:])...)) {
		t.Fatal("IPv4 echo request matched")
	}
}

// TestICMPChecksum checks the IPv4 echo checksum against x/net's.
func TestICMPChecksum(t *testing.T) {
	p := newICMPProber(pin{dst: mustAddr("203.0.113.10")})
	p.seq = 0x1234
	want, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: int(p.id), Seq: int(p.seq), Data: p.cookie[:]}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), want...)
	b[2], b[3] = 0, 0
	if got := inetChecksum(b); got != uint16(want[2])<<8|uint16(want[3]) {
		t.Fatalf("checksum %#04x, want %#02x%02x", got, want[2], want[3])
	}
}

// TestICMPConcurrentProbers runs several echo probers at once against both
// families on loopback. The kernel hands every echo request and reply to
// every raw socket of the protocol; each prober's socket filter must keep
// out all but its own replies, so no prober ever reads a packet it skips.
func TestICMPConcurrentProbers(t *testing.T) {
	testenv.Need(t) // raw sockets need root
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var probers []*icmpProber
	for i := range 6 {
		dst := "::1"
		if i%2 == 1 {
			dst = "127.0.0.1"
		}
		p := newICMPProber(pin{dst: mustAddr(dst)})
		probers = append(probers, p)
		t.Cleanup(func() { _ = p.Close() })
		wg.Go(func() {
			for range 50 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				rtt, err := p.Probe(ctx)
				cancel()
				if err != nil || rtt <= 0 {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent echo: %v", err)
	}
	for i, p := range probers {
		if n := p.skipped.Load(); n != 0 {
			t.Errorf("prober %d (%v) read %d packets that were not its replies: socket filter not in force", i, p.pin.dst, n)
		}
	}
}

// TestICMPInterrupt blocks a probe on a socket that receives nothing and
// checks that interrupt ends it, and that later probes fail at once.
func TestICMPInterrupt(t *testing.T) {
	testenv.Need(t)
	p := newICMPProber(pin{dst: mustAddr("::1")})
	defer p.Close()
	if _, err := p.probeUntil(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Replace the echo filter with one that drops everything.
	drop, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ipv6.NewPacketConn(p.conn).SetBPF(drop); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.probeUntil(time.Now().Add(time.Hour))
		done <- err
	}()
	// Interrupt whether or not the probe has reached its read yet: both
	// orders must end it.
	p.interrupt()
	select {
	case err := <-done:
		if !errors.Is(err, errInterrupted) {
			t.Fatalf("interrupted probe returned %v, want errInterrupted", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("probe still running 10s after interrupt")
	}
	if _, err := p.probeUntil(time.Now().Add(time.Hour)); !errors.Is(err, errInterrupted) {
		t.Fatalf("probe after interrupt returned %v", err)
	}
}

func TestTCPProber(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	if _, err := probeOnce(t, Target{Kind: KindTCP, Address: mustAddr("::1"), Port: port}); err != nil {
		t.Fatalf("open port: %v", err)
	}
	_ = ln.Close()
	if _, err := probeOnce(t, Target{Kind: KindTCP, Address: mustAddr("::1"), Port: port}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("closed port: %v, want connection refused", err)
	}
}

func TestHTTPProber(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: responderHTTP(), ErrorLog: quietLog}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()

	cert, pemBytes, err := selfSigned(mustAddr("::1"))
	if err != nil {
		t.Fatal(err)
	}
	tln, err := tls.Listen("tcp", "[::1]:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	tsrv := &http.Server{Handler: responderHTTP(), ErrorLog: quietLog}
	go func() { _ = tsrv.Serve(tln) }()
	t.Cleanup(func() { _ = tsrv.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tbase := "https://" + tln.Addr().String()

	cases := []struct {
		name string
		tg   Target
		want string // "" for success, else a substring of the error
	}{
		{"ok", Target{Kind: KindHTTP, URL: base + "/health"}, ""},
		{"body", Target{Kind: KindHTTP, URL: base + "/health", BodyContains: "multihomed"}, ""},
		{"body missing", Target{Kind: KindHTTP, URL: base + "/health", BodyContains: "nope"}, `does not contain "nope"`},
		{"status", Target{Kind: KindHTTP, URL: base + "/teapot"}, "status 418, want 200"},
		{"status expected", Target{Kind: KindHTTP, URL: base + "/teapot", ExpectStatus: 418}, ""},
		{"redirect not followed", Target{Kind: KindHTTP, URL: base + "/redirect"}, "status 302"},
		{"redirect followed", Target{Kind: KindHTTP, URL: base + "/redirect", FollowRedirects: true, BodyContains: "ok"}, ""},
		{"https", Target{Kind: KindHTTPS, URL: tbase + "/health", CAFile: caFile}, ""},
		{"https untrusted", Target{Kind: KindHTTPS, URL: tbase + "/health"}, "certificate"},
		{"https name mismatch", Target{Kind: KindHTTPS, URL: tbase + "/health", CAFile: caFile, TLSServerName: "other.example.org"}, "certificate"},
		{"https by name", Target{Kind: KindHTTPS, URL: "https://responder.example.org:" + portOf(tbase) + "/health",
			Address: mustAddr("::1"), CAFile: caFile}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := probeOnce(t, tc.tg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("probe failed: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("probe = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func portOf(u string) string { return u[strings.LastIndex(u, ":")+1:] }

func TestDNSProber(t *testing.T) {
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	go serveDNS(pc)
	t.Cleanup(func() { _ = pc.Close() })
	port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	tg := func(name, typ string, answer bool) Target {
		return Target{Kind: KindDNS, Address: mustAddr("::1"), Port: port, Query: name, QueryType: typ, ExpectAnswer: answer}
	}
	cases := []struct {
		tg   Target
		want string
	}{
		{tg("example.org", "AAAA", true), ""},
		{tg("v4only.example.org", "AAAA", false), ""},
		{tg("v4only.example.org", "AAAA", true), "no AAAA answer"},
		{tg("v4only.example.org", "A", true), ""},
		{tg("missing.example.org", "AAAA", false), "rcode NXDOMAIN, want NOERROR"},
	}
	for _, tc := range cases {
		_, err := probeOnce(t, tc.tg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v", tc.tg.Query, tc.tg.QueryType, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %s: %v, want an error containing %q", tc.tg.Query, tc.tg.QueryType, err, tc.want)
		}
	}
	_ = pc.Close()
	// No server: a timeout (nothing answers on loopback UDP; the port
	// unreachable may also come back as a refusal).
	if _, err := probeOnce(t, tg("example.org", "AAAA", false)); err == nil {
		t.Fatal("probe of a closed server succeeded")
	}
}

func TestSourceFromDevice(t *testing.T) {
	p := pin{addrDevice: "lo", dst: mustAddr("2001:db8::1")}
	if _, err := p.source(); err == nil || !strings.Contains(err.Error(), "set source_v6") {
		t.Fatalf("lo has no global IPv6 address: got %v, want an error naming source_v6", err)
	}
	p.src = mustAddr("2001:db8::2")
	if a, err := p.source(); err != nil || a != p.src {
		t.Fatalf("configured source: %v %v", a, err)
	}
}

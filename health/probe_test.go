package health

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
	"golang.org/x/net/icmp"
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
	reply := func(id, seq int, data []byte) []byte {
		b, err := (&icmp.Message{Type: ipv6.ICMPTypeEchoReply, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	from := &net.IPAddr{IP: net.ParseIP("2001:db8:9000:1::10")}
	other := &net.IPAddr{IP: net.ParseIP("2001:db8:9000:1::11")}
	id := int(p.id)
	if !p.matches(protoICMPv6, reply(id, 7, p.cookie[:]), from) {
		t.Fatal("own reply not matched")
	}
	for name, c := range map[string]struct {
		b    []byte
		from net.Addr
	}{
		"other identifier": {reply(id^1, 7, p.cookie[:]), from},
		"old sequence":     {reply(id, 6, p.cookie[:]), from},
		"other cookie":     {reply(id, 7, []byte("12345678")), from},
		"other source":     {reply(id, 7, p.cookie[:]), other},
		"truncated":        {reply(id, 7, p.cookie[:])[:6], from},
	} {
		if p.matches(protoICMPv6, c.b, c.from) {
			t.Errorf("%s: reply matched", name)
		}
	}
	if q := newICMPProber(p.pin); q.id == p.id {
		t.Fatal("two probers got the same identifier")
	}
}

// TestICMPConcurrentProbers runs several echo probers at once against both
// families on loopback: every raw socket sees every reply, so each must pick
// its own by identifier, sequence and cookie.
func TestICMPConcurrentProbers(t *testing.T) {
	testenv.Need(t) // raw sockets need root
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 6 {
		dst := "::1"
		if i%2 == 1 {
			dst = "127.0.0.1"
		}
		p := newICMPProber(pin{dst: mustAddr(dst)})
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

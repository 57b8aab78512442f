package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/test/bufconn"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness runs the API with fakes behind TLS, over bufconn or loopback TCP.
type harness struct {
	ctl *fakeController
	cfg *fakeConfig
	pki *testPKI
	log *lockedBuffer
	svc *Server
	// exits counts Options.Exit calls.
	exits atomic.Int32
	dial  func(t *testing.T, cert *tls.Certificate, opts ...grpc.DialOption) *grpc.ClientConn
}

type harnessOpts struct {
	watchBuffer int
	serverOpts  []grpc.ServerOption
}

func newHarness(t *testing.T, transport string, o harnessOpts) *harness {
	t.Helper()
	h := &harness{ctl: newFakeController(), cfg: newFakeConfig(t), pki: newTestPKI(t), log: &lockedBuffer{}}
	h.svc = NewServer(Options{Controller: h.ctl, Config: h.cfg, Logger: slog.New(slog.NewTextHandler(h.log, nil)), WatchBuffer: o.watchBuffer, Now: func() time.Time { return t0 }, Exit: func() { h.exits.Add(1) }})
	roles := Roles{ClientCAs: h.pki.pool,
		Admins:    []config.Principal{{Kind: config.PrincipalCN, Value: "noc-root"}},
		Operators: []config.Principal{{Kind: config.PrincipalCN, Value: "noc-alice"}},
		Viewers:   []config.Principal{{Kind: config.PrincipalCN, Value: "noc-dashboard"}}}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{h.pki.server}, ClientAuth: tls.RequestClientCert}
	gs := newGRPCServer(h.svc, credentials.NewTLS(tc), roles, o.serverOpts...)

	var lis net.Listener
	var dialer func(context.Context, string) (net.Conn, error)
	target := "passthrough:///bufnet"
	switch transport {
	case "bufconn":
		bl := bufconn.Listen(1 << 20)
		lis, dialer = bl, func(ctx context.Context, _ string) (net.Conn, error) { return bl.DialContext(ctx) }
	case "tcp":
		var err error
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		target = lis.Addr().String()
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	served := make(chan struct{})
	go func() { _ = gs.Serve(lis); close(served) }()
	t.Cleanup(func() {
		h.svc.Close()
		gs.Stop()
		<-served
	})
	h.dial = func(t *testing.T, cert *tls.Certificate, opts ...grpc.DialOption) *grpc.ClientConn {
		t.Helper()
		ctc := &tls.Config{RootCAs: h.pki.pool, ServerName: "localhost", MinVersion: tls.VersionTLS13}
		if cert != nil {
			ctc.Certificates = []tls.Certificate{*cert}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(ctc)))
		if dialer != nil {
			opts = append(opts, grpc.WithContextDialer(dialer))
		}
		cc, err := grpc.NewClient(target, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	return h
}

func (h *harness) client(t *testing.T, cert *tls.Certificate) apiv1.MultihomedClient {
	return apiv1.NewMultihomedClient(h.dial(t, cert))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// watchAsViewer opens a WatchEvents stream as the viewer that first
// replays the last replay events. cancel ends the stream; the test's end
// does too.
func (h *harness) watchAsViewer(t *testing.T, replay uint32) (apiv1.Multihomed_WatchEventsClient, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	t.Cleanup(cancel)
	st, err := h.client(t, &h.pki.viewer).WatchEvents(ctx, &apiv1.WatchEventsRequest{Replay: replay})
	if err != nil {
		t.Fatal(err)
	}
	return st, cancel
}

// recvSeq receives the stream's next message, fails t unless it is an
// event, and returns the event's sequence number.
func recvSeq(t *testing.T, st apiv1.Multihomed_WatchEventsClient) uint64 {
	t.Helper()
	m, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.GetEvent() == nil {
		t.Fatalf("got %v; want an event", m)
	}
	return m.GetEvent().GetSeq()
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

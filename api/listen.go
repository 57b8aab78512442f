package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
)

// Roles maps verified client certificates to roles.
type Roles struct {
	// Operators may call everything; Viewers the read calls.
	Operators, Viewers []config.Principal
	// Admins may also call Shutdown. No configuration key fills it yet
	// (config has no api.tcp.admins), so over TCP nobody is admin unless
	// the daemon sets it.
	Admins []config.Principal
	// ClientCAs verify client certificates.
	ClientCAs *x509.CertPool
}

// NewGRPCServer returns a gRPC server with the multihomed.v1 service,
// grpc.health.v1 and reflection registered, and authorization and audit
// installed. creds are the listener's transport credentials (TLS for TCP,
// the socket credentials of ListenUnix's listener); roles map certificates
// to roles (unused on the socket, whose peers are operators, or admins when
// they are root or the daemon's own user).
func NewGRPCServer(svc *Server, creds credentials.TransportCredentials, roles Roles) *grpc.Server {
	return newGRPCServer(svc, creds, roles)
}

func newGRPCServer(svc *Server, creds credentials.TransportCredentials, roles Roles, extra ...grpc.ServerOption) *grpc.Server {
	a := &authorizer{admins: roles.Admins, operators: roles.Operators, viewers: roles.Viewers, clientCAs: roles.ClientCAs, euid: os.Geteuid()}
	opts := append([]grpc.ServerOption{
		grpc.Creds(creds),
		grpc.ChainUnaryInterceptor(a.unary(auditor{svc.log})),
		grpc.ChainStreamInterceptor(a.stream()),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.MaxRecvMsgSize(MaxConfigLen + 64<<10),
	}, extra...)
	gs := grpc.NewServer(opts...)
	apiv1.RegisterMultihomedServer(gs, svc)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(apiv1.Multihomed_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs
}

// ServerTLS builds the TCP listener's TLS configuration and roles: TLS 1.3,
// the server's certificate, client certificates requested. The handshake
// proves the client holds the certificate's key; the chain is verified
// against the client CA per call (see authorizer), so a client without a
// valid certificate is told Unauthenticated rather than failing the
// handshake with a less helpful error.
func ServerTLS(t *config.APITCP) (*tls.Config, Roles, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, Roles{}, fmt.Errorf("api.tcp.cert_file/key_file: %w; give a PEM certificate chain and its key", err)
	}
	pem, err := os.ReadFile(t.ClientCAFile)
	if err != nil {
		return nil, Roles{}, fmt.Errorf("api.tcp.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, Roles{}, fmt.Errorf("api.tcp.client_ca_file: %s holds no PEM certificate", t.ClientCAFile)
	}
	return &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequestClientCert,
		}, Roles{
			Operators: t.Operators, Viewers: t.Viewers, ClientCAs: pool,
		}, nil
}

// Serve serves the API on the listeners cfg asks for until ctx ends, then
// stops gracefully (bounded: streams are cancelled after a few seconds).
// It returns an error if a listener cannot be set up; ctx's end is not an
// error.
func Serve(ctx context.Context, svc *Server, cfg config.API, log *slog.Logger) error {
	type srv struct {
		gs *grpc.Server
		l  net.Listener
	}
	var srvs []srv
	closeAll := func() {
		for _, s := range srvs {
			s.l.Close()
		}
	}
	if cfg.Socket != "" {
		l, err := ListenUnix(cfg.Socket, cfg.SocketMode, cfg.SocketGroup)
		if err != nil {
			return err
		}
		srvs = append(srvs, srv{NewGRPCServer(svc, unixServerCredentials(), Roles{}), l})
		log.Info("api: serving", "socket", cfg.Socket, "mode", fmt.Sprintf("%04o", cfg.SocketMode))
	}
	if cfg.TCP != nil {
		tc, roles, err := ServerTLS(cfg.TCP)
		if err != nil {
			closeAll()
			return err
		}
		l, err := net.Listen("tcp", cfg.TCP.Address.String())
		if err != nil {
			closeAll()
			return fmt.Errorf("api.tcp.address: %w", err)
		}
		srvs = append(srvs, srv{NewGRPCServer(svc, credentials.NewTLS(tc), roles), l})
		log.Info("api: serving", "address", l.Addr().String(), "tls", true)
	}
	errs := make(chan error, len(srvs))
	for _, s := range srvs {
		go func() { errs <- s.gs.Serve(s.l) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		err = fmt.Errorf("api: %w", err)
	}
	svc.Close() // ends WatchEvents streams so GracefulStop need not wait
	for _, s := range srvs {
		stopped := make(chan struct{})
		go func() { s.gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(3 * time.Second):
			s.gs.Stop()
			<-stopped
		}
	}
	return err
}

package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// DefaultSocket is where the daemon listens unless api.socket says
// otherwise; it equals config.DefaultAPISocket (a test in api checks).
const DefaultSocket = "/run/multihomed/api.sock"

// ErrUsage marks options that cannot work as given (a missing CA, an
// unreadable certificate); the caller should fix its flags.
var ErrUsage = errors.New("bad client options")

// ErrUnreachable marks a daemon that cannot be reached (no socket).
var ErrUnreachable = errors.New("daemon unreachable")

// Options say how to reach the daemon. With Address set, TCP with TLS 1.3
// is used and CACert is required; otherwise the unix socket at Socket
// (DefaultSocket when empty).
type Options struct {
	Socket  string
	Address string
	// CACert is the PEM file of the CA that signed the daemon's
	// certificate; Cert and Key, the client's certificate and key (needed
	// for any role).
	CACert, Cert, Key string
	// ServerName is the name to verify in the daemon's certificate
	// (default: the host of Address).
	ServerName string
}

// Dial returns a connection to the daemon. Like grpc.NewClient it does not
// connect yet: an unreachable TCP daemon shows as Unavailable on the first
// call; a missing socket is reported here, wrapped in ErrUnreachable.
func Dial(o Options, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	target, creds, err := o.transport()
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(target, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return cc, nil
}

func (o Options) transport() (string, credentials.TransportCredentials, error) {
	if o.Address == "" {
		sock := o.Socket
		if sock == "" {
			sock = DefaultSocket
		}
		if _, err := os.Stat(sock); err != nil {
			return "", nil, fmt.Errorf("%w: socket %s: %v (is multihomed running? see api.socket, or use --socket)", ErrUnreachable, sock, err)
		}
		return "unix://" + sock, UnixCredentials(), nil
	}
	if o.CACert == "" {
		return "", nil, fmt.Errorf("%w: --address needs --cacert (and --cert/--key for a role): the API only speaks TLS on TCP", ErrUsage)
	}
	pem, err := os.ReadFile(o.CACert)
	if err != nil {
		return "", nil, fmt.Errorf("%w: --cacert: %v", ErrUsage, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return "", nil, fmt.Errorf("%w: --cacert: %s holds no PEM certificate", ErrUsage, o.CACert)
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13, ServerName: o.ServerName}
	if o.Cert != "" || o.Key != "" {
		c, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return "", nil, fmt.Errorf("%w: --cert/--key: %v", ErrUsage, err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return o.Address, credentials.NewTLS(tc), nil
}

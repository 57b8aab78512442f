package api

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"syscall"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
)

// Role is what a caller may do.
type Role int

// Roles, in increasing power; each may do what the ones below may.
// RoleNone is refused everything but health. RoleAdmin may also shut the
// daemon down (Shutdown).
const (
	RoleNone Role = iota
	RoleViewer
	RoleOperator
	RoleAdmin
)

// String is the role's name as the configuration writes it (viewer,
// operator, admin; none for no role).
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// Identity is an authenticated caller.
type Identity struct {
	// Name is how audit lines and overrides name the caller: cert:CN=...
	// for a certificate, unix:uid=N for a socket peer.
	Name string
	Role Role
}

type identityKey struct{}

func identityOf(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}

// required is the role each method needs; a method missing here needs
// operator (fail closed), except the health service, which anyone may
// call so that load balancers can.
var required = map[string]Role{
	apiv1.Multihomed_GetStatus_FullMethodName:                        RoleViewer,
	apiv1.Multihomed_ListEvents_FullMethodName:                       RoleViewer,
	apiv1.Multihomed_WatchEvents_FullMethodName:                      RoleViewer,
	apiv1.Multihomed_ValidateConfig_FullMethodName:                   RoleViewer,
	apiv1.Multihomed_GetConfig_FullMethodName:                        RoleViewer,
	apiv1.Multihomed_GetVersion_FullMethodName:                       RoleViewer,
	apiv1.Multihomed_Drain_FullMethodName:                            RoleOperator,
	apiv1.Multihomed_Undrain_FullMethodName:                          RoleOperator,
	apiv1.Multihomed_SetOverride_FullMethodName:                      RoleOperator,
	apiv1.Multihomed_ReloadConfig_FullMethodName:                     RoleOperator,
	apiv1.Multihomed_ResetUplink_FullMethodName:                      RoleOperator,
	apiv1.Multihomed_Shutdown_FullMethodName:                         RoleAdmin,
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      RoleViewer,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": RoleViewer,
}

// RequiredRole returns the role a full method name needs.
func RequiredRole(method string) Role {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return RoleNone
	}
	if r, ok := required[method]; ok {
		return r
	}
	return RoleOperator
}

// isWrite reports whether a method changes anything (and is audited).
func isWrite(method string) bool { return RequiredRole(method) >= RoleOperator }

// authorizer turns a connection's credentials into an Identity.
type authorizer struct {
	admins, operators, viewers []config.Principal
	// euid is the daemon's user: a socket peer with it, or root, is admin.
	euid int
	// clientCAs verifies client certificates. The TLS handshake only
	// requests them, so a missing or foreign certificate reaches this
	// check and is answered with Unauthenticated, not a failed handshake.
	clientCAs *x509.CertPool
}

// identify returns the caller of ctx: a unix socket peer is an operator
// (the socket's mode and group are the access control), an admin when it
// is root or the daemon's own user (who could stop the daemon anyway); a
// TLS peer is matched by its verified client certificate.
func (a *authorizer) identify(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Identity{}, status.Error(codes.Unauthenticated, "no peer information")
	}
	switch ai := p.AuthInfo.(type) {
	case unixAuthInfo:
		role := RoleOperator
		if ai.uid == 0 || ai.uid == a.euid {
			role = RoleAdmin
		}
		return Identity{Name: fmt.Sprintf("unix:uid=%d", ai.uid), Role: role}, nil
	case credentials.TLSInfo:
		certs := ai.State.PeerCertificates
		if len(certs) == 0 {
			return Identity{Name: "tls:no-certificate"}, status.Error(codes.Unauthenticated, "no client certificate; present one signed by the API's client CA (mhctl --cert/--key)")
		}
		leaf := certs[0]
		if a.clientCAs == nil {
			return Identity{Name: "cert:CN=" + leaf.Subject.CommonName + "(unverified)"}, status.Error(codes.Unauthenticated, "this listener has no client CA; no certificate can be verified")
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.clientCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return Identity{Name: "cert:CN=" + leaf.Subject.CommonName + "(unverified)"}, status.Errorf(codes.Unauthenticated, "client certificate CN=%q is not valid for this API: %v", leaf.Subject.CommonName, err)
		}
		name := "cert:CN=" + leaf.Subject.CommonName
		if a.matches(leaf, a.admins) {
			return Identity{Name: name, Role: RoleAdmin}, nil
		}
		if a.matches(leaf, a.operators) {
			return Identity{Name: name, Role: RoleOperator}, nil
		}
		if a.matches(leaf, a.viewers) {
			return Identity{Name: name, Role: RoleViewer}, nil
		}
		return Identity{Name: name}, nil
	}
	return Identity{}, status.Error(codes.Unauthenticated, "connection carries no credentials the API accepts")
}

func (a *authorizer) matches(c *x509.Certificate, ps []config.Principal) bool {
	for _, p := range ps {
		switch p.Kind {
		case config.PrincipalCN:
			if c.Subject.CommonName == p.Value {
				return true
			}
		case config.PrincipalDNS:
			if slices.Contains(c.DNSNames, p.Value) {
				return true
			}
		case config.PrincipalEmail:
			if slices.Contains(c.EmailAddresses, p.Value) {
				return true
			}
		case config.PrincipalURI:
			for _, u := range c.URIs {
				if u.String() == p.Value {
					return true
				}
			}
		case config.PrincipalIP:
			for _, ip := range c.IPAddresses {
				if ip.String() == p.Value {
					return true
				}
			}
		}
	}
	return false
}

func (a *authorizer) authorize(ctx context.Context, method string) (context.Context, Identity, error) {
	need := RequiredRole(method)
	if need == RoleNone {
		return ctx, Identity{}, nil
	}
	id, err := a.identify(ctx)
	if err != nil {
		return ctx, id, err
	}
	if id.Role < need {
		return ctx, id, status.Errorf(codes.PermissionDenied, "%s (role %s) may not call %s; it needs the %s role (api.tcp.%ss)", id.Name, id.Role, method, need, need)
	}
	return context.WithValue(ctx, identityKey{}, id), id, nil
}

// auditor logs one line per write call: who, what, the result. The line
// is bounded whatever the request: an attacker must not be able to make
// each call cost the log a megabyte.
type auditor struct{ log *slog.Logger }

// MaxAuditField bounds the request summary and the error text of an audit
// line, in bytes; longer ones are cut and marked.
const MaxAuditField = 256

func (au auditor) audit(id Identity, method string, req any, err error) {
	if !isWrite(method) {
		return
	}
	code := status.Code(err)
	// An unauthenticated caller's request is not logged at all: whoever
	// it is may not even fill our log with text of their choosing.
	summary := "(not logged: caller not authenticated)"
	if code != codes.Unauthenticated {
		summary = truncate(requestSummary(req), MaxAuditField)
	}
	attrs := []any{"who", truncate(id.Name, MaxAuditField), "role", id.Role.String(), "call", method, "request", summary, "result", code.String()}
	if err != nil {
		attrs = append(attrs, "error", truncate(status.Convert(err).Message(), MaxAuditField))
		au.log.Warn("audit", attrs...)
		return
	}
	au.log.Info("audit", attrs...)
}

func requestSummary(req any) string {
	if s, ok := req.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", req)
}

// truncate cuts s to at most max bytes (at a rune boundary) and says how
// much was cut, so a reader knows the line is not the whole request.
// Newlines are escaped: one call, one line, with any log handler.
func truncate(s string, max int) string {
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = fmt.Sprintf("%s...[%d bytes cut]", s[:cut], len(s)-cut)
	}
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
	}
	return s
}

func (a *authorizer) unary(au auditor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, id, err := a.authorize(ctx, info.FullMethod)
		if err != nil {
			au.audit(id, info.FullMethod, req, err)
			return nil, err
		}
		resp, err := handler(ctx, req)
		au.audit(id, info.FullMethod, req, err)
		return resp, err
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w wrappedStream) Context() context.Context { return w.ctx }

func (a *authorizer) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, _, err := a.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, wrappedStream{ss, ctx})
	}
}

// unixCreds are transport credentials for the unix socket: no encryption
// (the socket never leaves the host), and the peer's uid from SO_PEERCRED
// so audit lines name the caller.
type unixCreds struct{}

type unixAuthInfo struct {
	credentials.CommonAuthInfo
	uid, pid int
}

func (unixAuthInfo) AuthType() string { return "unix" }

func (unixCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("api: these are the server's socket credentials; dial with client.UnixCredentials")
}

func (unixCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	ai := unixAuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, uid: -1, pid: -1}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		// bufconn in tests: a local in-process peer.
		return c, ai, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, nil, err
	}
	if cerr != nil {
		return nil, nil, fmt.Errorf("api: SO_PEERCRED: %w", cerr)
	}
	ai.uid, ai.pid = int(cred.Uid), int(cred.Pid)
	return c, ai, nil
}

func (unixCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix"}
}
func (u unixCreds) Clone() credentials.TransportCredentials { return u }
func (unixCreds) OverrideServerName(string) error           { return nil }

// unixServerCredentials returns the server side of the unix socket
// credentials; clients use client.UnixCredentials.
func unixServerCredentials() credentials.TransportCredentials { return unixCreds{} }

package client

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// unixCreds are the client side of the socket's transport credentials: no
// encryption (the socket never leaves the host); the server learns who we
// are from SO_PEERCRED, so there is nothing to send.
type unixCreds struct{}

// UnixCredentials returns transport credentials for dialing the API's unix
// socket ("unix://" + path).
func UnixCredentials() credentials.TransportCredentials { return unixCreds{} }

func (unixCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, unixAuthInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (unixCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("client: UnixCredentials are for clients; the server has its own")
}

func (unixCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix"}
}
func (u unixCreds) Clone() credentials.TransportCredentials { return u }
func (unixCreds) OverrideServerName(string) error           { return nil }

type unixAuthInfo struct{ credentials.CommonAuthInfo }

func (unixAuthInfo) AuthType() string { return "unix" }

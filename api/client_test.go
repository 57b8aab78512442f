package api

import (
	"testing"

	"github.com/multihomed/multihomed/api/client"
	"github.com/multihomed/multihomed/config"
)

// TestClientDefaultSocket: the client's default is the daemon's default
// (the client package may not import config to share the constant).
func TestClientDefaultSocket(t *testing.T) {
	if client.DefaultSocket != config.DefaultAPISocket {
		t.Errorf("client.DefaultSocket = %q; config.DefaultAPISocket = %q", client.DefaultSocket, config.DefaultAPISocket)
	}
}

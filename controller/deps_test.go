package controller

import (
	"testing"

	"github.com/multihomed/multihomed/internal/depcheck"
)

// TestNoDatapathLinked: the controller decides and drives its appliers
// through the interfaces in loop.go; it links none of them. Their kernel
// and protocol libraries (netlink, eBPF, nftables, GoBGP, the DNS client)
// would make Decide's tests and the API as heavy as the daemon: the plain
// types it shares with them live in routing, the RFC 6296 arithmetic in
// nptv6/rfc6296, and cmd/multihomed wires the appliers in.
func TestNoDatapathLinked(t *testing.T) {
	depcheck.Forbid(t, ".", depcheck.Datapath, depcheck.AllowPure, "depend on the applier through an interface and share types via routing")
}

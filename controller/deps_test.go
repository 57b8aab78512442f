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
	depcheck.Forbid(t, ".", []string{
		"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "github.com/cilium/ebpf",
		"github.com/google/nftables", "github.com/osrg/gobgp", "github.com/miekg/dns",
		"github.com/multihomed/multihomed/bgp", "github.com/multihomed/multihomed/fib",
		"github.com/multihomed/multihomed/dnsupdate", "github.com/multihomed/multihomed/nat44",
		"github.com/multihomed/multihomed/returnpath", "github.com/multihomed/multihomed/nptv6",
	}, func(dep string) bool {
		// The pure RFC 6296 arithmetic is allowed; nptv6 itself is not.
		return dep == "github.com/multihomed/multihomed/nptv6/rfc6296"
	}, "depend on the applier through an interface and share types via routing")
}

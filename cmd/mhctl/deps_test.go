package main

import (
	"strings"
	"testing"

	"github.com/multihomed/multihomed/internal/depcheck"
)

// TestThinClient: mhctl links only the client side. The server package
// (api), config and what they bring (GoBGP, netlink, viper, Prometheus)
// would make the NOC tool as heavy as the daemon and tie it to its
// versions.
func TestThinClient(t *testing.T) {
	depcheck.Forbid(t, ".", []string{
		"github.com/osrg/gobgp", "github.com/vishvananda/netlink", "github.com/spf13/viper", "github.com/prometheus",
		"github.com/multihomed/multihomed/api", "github.com/multihomed/multihomed/config",
		"github.com/multihomed/multihomed/controller", "github.com/multihomed/multihomed/health",
	}, func(dep string) bool {
		// api/v1 and api/client are the client side.
		return strings.HasPrefix(dep, "github.com/multihomed/multihomed/api/")
	}, "import api/client and api/v1 only")
}

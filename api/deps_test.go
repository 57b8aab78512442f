package api

import (
	"testing"

	"github.com/multihomed/multihomed/internal/depcheck"
)

// TestNoDatapathLinked: the API serves the controller's status and
// overrides; like the controller it links no netlink, eBPF, nftables,
// GoBGP or DNS library, nor the packages that wrap them (their types
// arrive as routing's).
func TestNoDatapathLinked(t *testing.T) {
	depcheck.Forbid(t, ".", depcheck.Datapath, depcheck.AllowPure, "take the type from routing or the value through controller")
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestThinClient: mhctl links only the client side. The server package
// (api), config and what they bring (GoBGP, netlink, viper, Prometheus)
// would make the NOC tool as heavy as the daemon and tie it to its
// versions.
func TestThinClient(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("no go command to list mhctl's dependencies: %v", err)
			}
			t.Skipf("no go command to list mhctl's dependencies: %v", err)
		}
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages; the check would prove nothing:\n%s", len(deps), out)
	}
	forbidden := []string{
		"github.com/osrg/gobgp", "github.com/vishvananda/netlink", "github.com/spf13/viper", "github.com/prometheus",
		"github.com/multihomed/multihomed/api", "github.com/multihomed/multihomed/config",
		"github.com/multihomed/multihomed/controller", "github.com/multihomed/multihomed/health",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			// api/v1 and api/client are the client side: allowed.
			if d == f || strings.HasPrefix(d, f+"/") && !strings.HasPrefix(d, "github.com/multihomed/multihomed/api/") {
				t.Errorf("mhctl links %s (forbidden: %s); import api/client and api/v1 only", d, f)
			}
		}
	}
}

package depcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/internal/testenv"
)

// Datapath lists what the controller and the API must not link: the
// kernel and protocol libraries (netlink, network namespaces, eBPF,
// nftables, GoBGP, the DNS client) and the packages of this module that
// wrap them. They reach those appliers through interfaces that
// cmd/multihomed wires; see AllowPure for the one subpackage allowed.
var Datapath = []string{
	"github.com/vishvananda/netlink", "github.com/vishvananda/netns", "github.com/cilium/ebpf",
	"github.com/google/nftables", "github.com/osrg/gobgp", "github.com/miekg/dns",
	"github.com/multihomed/multihomed/bgp", "github.com/multihomed/multihomed/fib",
	"github.com/multihomed/multihomed/dnsupdate", "github.com/multihomed/multihomed/nat44",
	"github.com/multihomed/multihomed/returnpath", "github.com/multihomed/multihomed/nptv6",
}

// AllowPure allows nptv6/rfc6296, the pure RFC 6296 arithmetic below the
// forbidden nptv6.
func AllowPure(dep string) bool { return dep == "github.com/multihomed/multihomed/nptv6/rfc6296" }

// Deps returns the import paths of the packages pkg (a `go list` pattern,
// such as "." for the test's own package) depends on, itself included.
func Deps(t testing.TB, pkg string) []string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			if testenv.InCI() {
				t.Fatalf("no go command to list %s's dependencies: %v", pkg, err)
			}
			t.Skipf("no go command to list %s's dependencies: %v", pkg, err)
		}
	}
	out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps %s gave %d packages; the check would prove nothing:\n%s", pkg, len(deps), out)
	}
	return deps
}

// Forbid fails t once for every dependency of pkg that is one of
// forbidden or a package below one, unless allowed reports it is fine
// (nil allows nothing). fix is appended to each failure: what to import
// instead.
func Forbid(t testing.TB, pkg string, forbidden []string, allowed func(dep string) bool, fix string) {
	t.Helper()
	for _, d := range Deps(t, pkg) {
		for _, f := range forbidden {
			if (d == f || strings.HasPrefix(d, f+"/")) && (allowed == nil || !allowed(d)) {
				t.Errorf("%s links %s (forbidden: %s); %s", pkg, d, f, fix)
			}
		}
	}
}

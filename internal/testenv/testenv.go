package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the suite runs under CI (the CI variable is "true").
func InCI() bool { return os.Getenv("CI") == "true" }

// Need checks that the process is root and that each named program is on
// PATH. When something is missing it skips t outside CI and fails it in CI,
// naming what is missing and how to get it.
func Need(t testing.TB, programs ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces need CAP_NET_ADMIN)")
	}
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, fmt.Sprintf("%s (install it: see .ci/run)", p))
		}
	}
	if len(missing) == 0 {
		return
	}
	if InCI() {
		t.Fatalf("CI must run this test but it lacks: %v", missing)
	}
	t.Skipf("skipped outside CI: lacks %v", missing)
}

// Eventually polls cond every 50 ms until it reports true or timeout
// passes, then fails t with what and the last state cond described. It is
// the bounded wait the tests use instead of sleeping for luck.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s; last seen: %s", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

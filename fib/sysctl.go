package fib

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// nexthopCompatPath is the setting that covers both families.
const nexthopCompatPath = "/proc/sys/net/ipv4/nexthop_compat_mode"

// NexthopCompatMode reports net.ipv4.nexthop_compat_mode of the calling
// thread's network namespace (it covers IPv6 as well). While it is on, the
// kernel default, a nexthop change also sends a route notification for
// every route that uses the nexthop: moving a full table off a failed
// uplink then takes about 30 times as long (docs/benchmarks.md, "Kernel
// install: nexthop objects"). known is false on a kernel without the
// setting.
func NexthopCompatMode() (on, known bool, err error) {
	b, err := os.ReadFile(nexthopCompatPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read %s: %w", nexthopCompatPath, err)
	}
	switch v := strings.TrimSpace(string(b)); v {
	case "0":
		return false, true, nil
	case "1":
		return true, true, nil
	default:
		return false, false, fmt.Errorf("%s holds %q; want 0 or 1", nexthopCompatPath, v)
	}
}

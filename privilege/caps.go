package privilege

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cap is a Linux capability number (capabilities(7)).
type Cap uint

// The capabilities the daemon may need.
const (
	// NetBindService lets it listen on a TCP port below
	// net.ipv4.ip_unprivileged_port_start (1024 unless changed).
	NetBindService Cap = unix.CAP_NET_BIND_SERVICE
	// NetAdmin lets it write routes and policy rules and set SO_MARK.
	NetAdmin Cap = unix.CAP_NET_ADMIN
	// NetRaw lets it open the raw sockets of ICMP probes.
	NetRaw Cap = unix.CAP_NET_RAW
	// Perfmon and BPF let it load and attach the eBPF NPTv6 programs.
	Perfmon Cap = unix.CAP_PERFMON
	BPF     Cap = unix.CAP_BPF
)

var capNames = map[Cap]string{
	NetBindService: "CAP_NET_BIND_SERVICE",
	NetAdmin:       "CAP_NET_ADMIN",
	NetRaw:         "CAP_NET_RAW",
	Perfmon:        "CAP_PERFMON",
	BPF:            "CAP_BPF",
}

// String returns the capability's name as systemd and capabilities(7)
// write it, such as CAP_NET_ADMIN.
func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Set is a set of capabilities, bit c standing for Cap c (the kernel's
// layout, as in /proc/PID/status).
type Set uint64

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return c < 64 && s&(1<<c) != 0 }

// State is a process's capability sets that matter here.
type State struct {
	// Effective is what the kernel checks: the daemon never raises a
	// capability itself, so only these count.
	Effective Set
	// Permitted is what it could raise into Effective.
	Permitted Set
	// Bounding caps what any exec may gain: a capability outside it cannot
	// be given by AmbientCapabilities, only by the container or the parent.
	Bounding Set
}

// Current returns the calling thread's capability sets. The Go runtime's
// threads share them unless something changes one thread's, which this
// daemon never does.
func Current() (State, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return State{}, fmt.Errorf("privilege: capget: %w", err)
	}
	st := State{
		Effective: Set(data[0].Effective) | Set(data[1].Effective)<<32,
		Permitted: Set(data[0].Permitted) | Set(data[1].Permitted)<<32,
	}
	for c := Cap(0); c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			// EINVAL past the kernel's last capability: the rest are out.
			break
		}
		if in == 1 {
			st.Bounding |= 1 << c
		}
	}
	return st, nil
}

// UnprivilegedPortStartFile is the sysctl that says from which port on
// binding needs no capability (it holds for IPv4 and IPv6, per network
// namespace).
const UnprivilegedPortStartFile = "/proc/sys/net/ipv4/ip_unprivileged_port_start"

// DefaultUnprivilegedPortStart is the kernel's default of that sysctl.
const DefaultUnprivilegedPortStart = 1024

// UnprivilegedPortStart reads UnprivilegedPortStartFile in the caller's
// network namespace, or returns DefaultUnprivilegedPortStart when it cannot
// (an older kernel, no /proc): then the stricter rule applies.
func UnprivilegedPortStart() int {
	b, err := os.ReadFile(UnprivilegedPortStartFile)
	if err != nil {
		return DefaultUnprivilegedPortStart
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return DefaultUnprivilegedPortStart
	}
	return n
}

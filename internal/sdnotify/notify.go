package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Messages of sd_notify(3) the daemon sends.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Notifier sends notifications to the service manager. The zero value and
// a nil *Notifier are no-ops (not under systemd). Safe for concurrent use.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, a no-op one when it is
// unset, and an error when it names something that is not a unix socket
// path or abstract name.
func FromEnv() (*Notifier, error) {
	return New(os.Getenv("NOTIFY_SOCKET"))
}

// New returns a Notifier sending to socket: an absolute path, or "@name"
// for the abstract namespace; "" gives a no-op Notifier.
func New(socket string) (*Notifier, error) {
	switch {
	case socket == "":
		return &Notifier{}, nil
	case socket[0] == '@':
		// Linux abstract namespace: the kernel name begins with a NUL
		// byte, which Go writes for a name beginning with '@'.
		if len(socket) == 1 {
			return nil, errors.New("sdnotify: NOTIFY_SOCKET \"@\" names no abstract socket")
		}
	case socket[0] == '/':
	default:
		// vsock: addresses (systemd 253, for VMs) are not supported.
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q: only a path or an @abstract name is supported", socket)
	}
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Notify sends the lines (such as Ready, or "STATUS=...") as one
// datagram. A no-op Notifier returns nil.
func (n *Notifier) Notify(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %s: %w", n.addr.Name, err)
	}
	return nil
}

// WatchdogInterval returns the watchdog timeout systemd set for this
// process ($WATCHDOG_USEC; 0 when there is none, or when $WATCHDOG_PID
// names another process). Pings are due at half of it.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID %q is not a process id", pid)
		}
		if p != self {
			return 0, nil // meant for another process (we were forked)
		}
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a positive number of microseconds", usec)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// ReloadingNow is the RELOADING=1 notification with the MONOTONIC_USEC
// timestamp systemd 253 and later want beside it (sd_notify(3)); send
// Ready when the reload is over, whatever its outcome.
func ReloadingNow() []string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return []string{Reloading}
	}
	return []string{Reloading, fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000)}
}

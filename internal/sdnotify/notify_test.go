package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeSystemd is a NOTIFY_SOCKET listener, as systemd holds one.
type fakeSystemd struct {
	t    *testing.T
	conn *net.UnixConn
	name string
}

func listen(t *testing.T, name string) *fakeSystemd {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeSystemd{t: t, conn: c, name: name}
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	return listen(t, filepath.Join(t.TempDir(), "notify.sock"))
}

// next returns the next datagram, failing the test after 5 s.
func (f *fakeSystemd) next() string {
	f.t.Helper()
	msg, ok := f.read(5 * time.Second)
	if !ok {
		f.t.Fatal("no notification within 5s")
	}
	return msg
}

// pending returns a datagram already queued, if any.
func (f *fakeSystemd) pending() (string, bool) { return f.read(time.Millisecond) }

func (f *fakeSystemd) read(wait time.Duration) (string, bool) {
	buf := make([]byte, 4096)
	if err := f.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		f.t.Fatal(err)
	}
	n, err := f.conn.Read(buf)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return "", false
		}
		f.t.Fatal(err)
	}
	return string(buf[:n]), true
}

func TestNotifyPath(t *testing.T) {
	sd := newFakeSystemd(t)
	n, err := New(sd.name)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Ready, "STATUS=deciding"); err != nil {
		t.Fatal(err)
	}
	if got := sd.next(); got != "READY=1\nSTATUS=deciding" {
		t.Errorf("datagram %q", got)
	}
}

func TestNotifyAbstract(t *testing.T) {
	name := fmt.Sprintf("@multihomed-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	sd := listen(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	n, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Stopping); err != nil {
		t.Fatal(err)
	}
	if got := sd.next(); got != Stopping {
		t.Errorf("datagram %q", got)
	}
}

func TestNoSocketIsNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatal(err)
	}
	var nilN *Notifier
	if err := nilN.Notify(Ready); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, s := range []string{"@", "relative.sock", "vsock:2:1234"} {
		if _, err := New(s); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
}

func TestNotifyUnreachable(t *testing.T) {
	n, err := New(filepath.Join(t.TempDir(), "nobody-listens.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(Ready); err == nil {
		t.Fatal("no error sending to a missing socket")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tc := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", "42", 30 * time.Second, false},
		{"30000000", "43", 0, false}, // another process's watchdog
		{"0", "", 0, true},
		{"-5", "", 0, true},
		{"30s", "", 0, true},
		{"1000", "x", 0, true},
	} {
		got, err := watchdogInterval(tc.usec, tc.pid, 42)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.err)
		}
	}
	t.Setenv("WATCHDOG_USEC", "2000000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	if got, err := WatchdogInterval(); got != 2*time.Second || err != nil {
		t.Errorf("WatchdogInterval() = %v, %v; want 2s", got, err)
	}
}

func TestReloadingNow(t *testing.T) {
	msg := ReloadingNow()
	if len(msg) != 2 || msg[0] != Reloading {
		t.Fatalf("ReloadingNow() = %q", msg)
	}
	var usec int64
	if _, err := fmt.Sscanf(msg[1], "MONOTONIC_USEC=%d", &usec); err != nil || usec <= 0 {
		t.Fatalf("%q: not a MONOTONIC_USEC timestamp (%v)", msg[1], err)
	}
}

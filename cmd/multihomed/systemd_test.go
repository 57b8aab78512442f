package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/sdnotify"
)

// fakeLoop reports each Ready check on consulted, so the test knows the
// daemon looked and found it not ready.
type fakeLoop struct {
	ready     atomic.Bool
	consulted chan bool
}

func (f *fakeLoop) Ready() bool {
	r := f.ready.Load()
	f.consulted <- r
	return r
}

func (f *fakeLoop) Alive(context.Context) error { return nil }

// notifySocket listens where systemd would and returns a reader of its
// datagrams (each within 5 s, or the test fails) and a check for one
// already queued.
func notifySocket(t *testing.T) (string, func() string, func() (string, bool)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	read := func(wait time.Duration) (string, bool) {
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(wait))
		n, err := c.Read(buf)
		if err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
	next := func() string {
		t.Helper()
		m, ok := read(5 * time.Second)
		if !ok {
			t.Fatal("no notification within 5s")
		}
		return m
	}
	return path, next, func() (string, bool) { return read(time.Millisecond) }
}

// TestSystemdReadyAfterFirstDecision: no READY=1 while the loop has not
// decided, READY=1 once it has, watchdog pings, then STOPPING=1.
func TestSystemdReadyAfterFirstDecision(t *testing.T) {
	path, next, pending := notifySocket(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", "")
	sd := newSystemd(slog.New(slog.NewTextHandler(io.Discard, nil)))
	loop := &fakeLoop{consulted: make(chan bool)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sd.run(ctx, loop) }()

	// Two checks found it not ready: the first one's outcome is sent (or
	// not) before the second check starts.
	for range 2 {
		if <-loop.consulted {
			t.Fatal("ready too early")
		}
	}
	sd.reloading() // a SIGHUP before readiness says nothing
	sd.reloaded()
	if m, ok := pending(); ok {
		t.Fatalf("%q sent before the first decision", m)
	}
	loop.ready.Store(true)
	<-loop.consulted
	if m := next(); !strings.HasPrefix(m, sdnotify.Ready+"\n") {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	if m := next(); m != sdnotify.Watchdog {
		t.Fatalf("notification %q, want a watchdog ping", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for {
		m := next()
		if m == sdnotify.Stopping {
			break
		}
		if m != sdnotify.Watchdog {
			t.Fatalf("notification %q while stopping", m)
		}
	}
}

// TestSystemdReload: after readiness a reload is framed by RELOADING=1
// (with its timestamp) and READY=1.
func TestSystemdReload(t *testing.T) {
	path, next, _ := notifySocket(t)
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "")
	sd := newSystemd(slog.New(slog.NewTextHandler(io.Discard, nil)))
	loop := &fakeLoop{consulted: make(chan bool, 1)}
	loop.ready.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sd.run(ctx, loop) }()
	if m := next(); !strings.HasPrefix(m, sdnotify.Ready) {
		t.Fatalf("%q, want READY=1", m)
	}
	sd.reloading()
	if m := next(); !strings.HasPrefix(m, sdnotify.Reloading+"\nMONOTONIC_USEC=") {
		t.Fatalf("%q, want RELOADING=1 with MONOTONIC_USEC", m)
	}
	sd.reloaded()
	if m := next(); m != sdnotify.Ready {
		t.Fatalf("%q, want READY=1", m)
	}
	cancel()
	<-done
	if m := next(); m != sdnotify.Stopping {
		t.Fatalf("%q, want STOPPING=1", m)
	}
}

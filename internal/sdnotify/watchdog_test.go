package sdnotify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestWatchdogStopsWhileNotAlive drives the ticks by hand: a ping for
// every tick whose alive check succeeds, none for the tick whose check
// fails. Datagrams arrive in order, so a ping sent for the failed tick
// would be read in place of the next tick's and leave one pending.
func TestWatchdogStopsWhileNotAlive(t *testing.T) {
	sd := newFakeSystemd(t)
	n, err := New(sd.name)
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	checked := make(chan error)
	stuck := make(chan bool, 1)
	alive := func(ctx context.Context) error {
		var err error
		if <-stuck {
			<-ctx.Done() // a stuck loop never answers
			err = ctx.Err()
		}
		checked <- err
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.watchdog(ctx, 20*time.Millisecond, ticks, alive, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	tick := func(isStuck bool) error {
		stuck <- isStuck
		ticks <- time.Now()
		return <-checked
	}

	if err := tick(false); err != nil {
		t.Fatal(err)
	}
	if got := sd.next(); got != Watchdog {
		t.Fatalf("datagram %q, want %q", got, Watchdog)
	}
	if err := tick(true); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stuck check returned %v", err)
	}
	if err := tick(false); err != nil {
		t.Fatal(err)
	}
	if got := sd.next(); got != Watchdog {
		t.Fatalf("datagram %q, want %q", got, Watchdog)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if msg, ok := sd.pending(); ok {
		t.Fatalf("an extra datagram %q: a ping was sent while the loop was stuck", msg)
	}
}

// TestRunWatchdogPaces runs the real ticker: pings come at half the
// interval while alive succeeds.
func TestRunWatchdogPaces(t *testing.T) {
	sd := newFakeSystemd(t)
	n, err := New(sd.name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- n.RunWatchdog(ctx, 40*time.Millisecond, func(context.Context) error { return nil }, slog.Default())
	}()
	for range 3 {
		if got := sd.next(); got != Watchdog {
			t.Fatalf("datagram %q", got)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Three pings at 20 ms each cannot come sooner than 60 ms.
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("three pings in %v: faster than interval/2", el)
	}
}

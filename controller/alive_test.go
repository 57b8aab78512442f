package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"
	"go.uber.org/goleak"
)

// blockingEgress is a fakeEgress whose Set waits until release is closed:
// a loop stuck in an applier.
type blockingEgress struct {
	fakeEgress
	entered chan struct{} // receives once per Set call
	release chan struct{}
}

func (b *blockingEgress) Set(ctx context.Context, paths []routing.EgressPath, ecmp bool) ([]routing.EgressRoute, error) {
	select {
	case b.entered <- struct{}{}:
	default: // only the first call is waited for
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.fakeEgress.Set(ctx, paths, ecmp)
}

// TestAliveAndReady: a loop stuck in its first pass is neither ready nor
// alive; once the applier returns it is both.
func TestAliveAndReady(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := loopConfig(t)
	eg := &blockingEgress{entered: make(chan struct{}, 1), release: make(chan struct{})}
	sp, h := newFakeSpeaker(t, cfg), newFakeHealth(cfg)
	loop := New(cfg, Deps{Speaker: sp, Egress: eg, Health: h})
	if loop.Ready() {
		t.Fatal("Ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	<-eg.entered // the first pass is inside the applier now
	actx, acancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err := loop.Alive(actx)
	acancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Alive on a stuck loop = %v, want deadline exceeded", err)
	}
	if loop.Ready() {
		t.Fatal("Ready while the first decision is still being applied")
	}

	close(eg.release)
	waitFor(t, "ready after the first pass", func() (bool, string) { return loop.Ready(), "not ready" })
	for range 3 {
		if err := loop.Alive(ctx); err != nil {
			t.Fatalf("Alive on a running loop: %v", err)
		}
	}
}

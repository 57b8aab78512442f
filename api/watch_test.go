package api

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/controller"
)

// TestWatchEventsStartCost (#13): a new stream over a full history finds
// its start without paging through it. The old code read the whole
// history, 1000 events a call (100 calls here), under the lock the
// controller needs to add events.
func TestWatchEventsStartCost(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	for range 100_000 {
		h.ctl.addEvent("isp-a", controller.StateDown)
	}
	before := h.ctl.eventsCallCount()
	st, _ := h.watchAsViewer(t, 3)
	for want := uint64(99_998); want <= 100_000; want++ {
		if got := recvSeq(t, st); got != want {
			t.Fatalf("replayed seq %d; want %d", got, want)
		}
	}
	// The pump reads once for the replay and once more to find nothing.
	if n := h.ctl.eventsCallCount() - before; n > 3 {
		t.Errorf("starting one stream took %d history reads; want at most 3", n)
	}
}

// TestWatchEventsPerPrincipalLimit (#13): one caller can hold at most
// MaxStreamsPerPrincipal streams; others are not affected, and a closed
// stream frees its place.
func TestWatchEventsPerPrincipalLimit(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	h.svc.maxStreams = 2
	h.ctl.addEvent("isp-a", controller.StateDown)
	viewer := h.client(t, &h.pki.viewer)
	open := func(cl apiv1.MultihomedClient) (context.CancelFunc, error) {
		ctx, cancel := context.WithCancel(testCtx(t))
		st, err := cl.WatchEvents(ctx, &apiv1.WatchEventsRequest{Replay: 1})
		if err == nil {
			// The server answers the limit on the first receive; a
			// stream that is in gets the replayed event instead.
			_, err = st.Recv()
		}
		return cancel, err
	}
	c1, err := open(viewer)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := open(viewer)
	if err != nil {
		t.Fatal(err)
	}
	defer c2()
	c3, err := open(viewer)
	c3()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third stream of one caller: %v; want ResourceExhausted", err)
	}
	c4, err := open(h.client(t, &h.pki.operator))
	if err != nil {
		t.Fatalf("another caller's stream: %v", err)
	}
	defer c4()
	c1()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c5, err := open(viewer)
		c5()
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("stream after closing one: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // bounded: the server sees the close asynchronously
	}
}

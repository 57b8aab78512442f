package controller

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestHistorySince: the binary search gives what a linear scan gives, for
// every position, limit and amount of eviction, and bounds are the ends.
func TestHistorySince(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, max := range []int{1, 7, 100} {
		h := newHistory(max)
		for n := 0; n < 3*max+5; n++ {
			h.add(Event{Time: time.Unix(int64(n), 0), Reason: "r"})
			oldest, newest := h.bounds()
			if newest != uint64(n+1) || oldest != h.buf[0].Seq || newest-oldest+1 != uint64(len(h.buf)) {
				t.Fatalf("max %d after %d adds: bounds %d..%d, kept %d", max, n+1, oldest, newest, len(h.buf))
			}
			for range 5 {
				after := uint64(rng.IntN(n + 3))
				limit := rng.IntN(max+2) - 1
				if got, want := h.since(after, limit), linearSince(h.buf, after, limit); !cmp.Equal(got, want) {
					t.Fatalf("max %d, since(%d, %d): %s", max, after, limit, cmp.Diff(want, got))
				}
			}
		}
	}
	if o, n := newHistory(5).bounds(); o != 0 || n != 0 {
		t.Errorf("empty history bounds %d..%d; want 0..0", o, n)
	}
}

// TestHistorySinceCopies: what since returns does not change when the ring
// moves on (the API keeps it while sending).
func TestHistorySinceCopies(t *testing.T) {
	h := newHistory(2)
	h.add(Event{Reason: "a"})
	got := h.since(0, 1)
	h.add(Event{Reason: "b"})
	h.add(Event{Reason: "c"})
	if got[0].Reason != "a" {
		t.Errorf("returned event changed to %q", got[0].Reason)
	}
}

func linearSince(buf []Event, after uint64, limit int) []Event {
	var out []Event
	for _, e := range buf {
		if e.Seq > after {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out
}

// BenchmarkHistorySince: the cost of a watcher's lookup with a full
// history of a million events (controller.history_size's maximum) does
// not grow with the history.
func BenchmarkHistorySince(b *testing.B) {
	h := newHistory(1_000_000)
	for range 1_000_000 {
		h.add(Event{})
	}
	b.ResetTimer()
	for i := range b.N {
		h.since(uint64(999_000+i%900), 10)
	}
}

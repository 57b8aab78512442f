package lab

import (
	"os"
	"testing"
	"time"
)

// TestSendClockAt: a sequence number's sending time is interpolated
// between the samples around it, per direction, and clamped outside them.
func TestSendClockAt(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	c := sendClock{
		t: []time.Time{t0, t0.Add(10 * time.Millisecond), t0.Add(30 * time.Millisecond)},
		// Direction 0 sent 10 packets in the first 10 ms, then stalled
		// (a loaded sender) to 2 in the next 20 ms; direction 1 steady.
		n: [][2]uint64{{0, 0}, {10, 5}, {12, 15}},
	}
	for _, tc := range []struct {
		dir  int
		seq  uint64
		want time.Duration
	}{
		{0, 0, 0},
		{0, 5, 5 * time.Millisecond},
		{0, 10, 10 * time.Millisecond},
		{0, 11, 20 * time.Millisecond},
		{1, 10, 20 * time.Millisecond},
		{0, 500, 30 * time.Millisecond}, // after the last sample
	} {
		if got := c.at(tc.dir, tc.seq).Sub(t0); got != tc.want {
			t.Errorf("at(%d, %d) = %s, want %s", tc.dir, tc.seq, got, tc.want)
		}
	}
}

// TestProcessCPUSelf reads this process's own CPU time while it spins:
// it must rise above zero (a parser reading the wrong fields would stay at
// zero, or fail). Bounded: a loaded machine may give the test little CPU.
func TestProcessCPUSelf(t *testing.T) {
	deadline := time.Now().Add(10 * time.Second)
	x := 0
	for {
		for range 1_000_000 {
			x++
		}
		got, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if got > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ProcessCPU(self) still %s after 10 s of spinning (%d loops)", got, x)
		}
	}
}

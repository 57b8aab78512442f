package flowmeter

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
)

func TestReportGaps(t *testing.T) {
	r := NewReceiver()
	for _, s := range []uint64{0, 1, 2, 6, 7, 9} {
		r.received[s] = true
	}
	got := r.Report(0, 10, time.Millisecond)
	want := Report{Sent: 10, Received: 6, Lost: 4, LongestGap: 3, LossWindow: 3 * time.Millisecond}
	if got != want {
		t.Fatalf("Report = %+v; want %+v", got, want)
	}
	if h := r.Highest(); h != 10 {
		t.Fatalf("Highest = %d; want 10", h)
	}
}

// TestLoopback: a real flow on loopback loses nothing.
func TestLoopback(t *testing.T) {
	a, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReceiver()
	done := make(chan struct{})
	go func() { r.Run(b); close(done) }()
	ctx, cancel := context.WithCancel(context.Background())
	var sent uint64
	sentc := make(chan uint64, 1)
	go func() {
		Send(ctx, a, b.LocalAddr(), time.Millisecond, func(n uint64) {
			select {
			case sentc <- n:
			default:
			}
		})
	}()
	testenv.Eventually(t, "200 packets sent", 10*time.Second, func() (bool, string) {
		select {
		case sent = <-sentc:
		default:
		}
		return sent >= 200, ""
	})
	cancel()
	testenv.Eventually(t, "first 200 received", 5*time.Second, func() (bool, string) {
		rep := r.Report(0, 200, time.Millisecond)
		return rep.Lost == 0, rep.String()
	})
	b.Close()
	<-done
}

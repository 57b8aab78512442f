package flowmeter

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"
)

// PacketSize is the size of every flow packet.
const PacketSize = 64

// Send writes a packet with sequence numbers 0, 1, 2, ... to to every
// interval until ctx ends, calling sent (if not nil) with the count so far
// after each. Write errors (no route during a failover) count as sent and
// lost: that is what is measured.
func Send(ctx context.Context, conn net.PacketConn, to net.Addr, interval time.Duration, sent func(n uint64)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	buf := make([]byte, PacketSize)
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		binary.BigEndian.PutUint64(buf, seq)
		_, _ = conn.WriteTo(buf, to)
		seq++
		if sent != nil {
			sent(seq)
		}
	}
}

// Receiver records the sequence numbers that arrived. Safe for concurrent
// use.
type Receiver struct {
	mu sync.Mutex
	// received is guarded by mu.
	received map[uint64]bool
}

// NewReceiver returns an empty receiver.
func NewReceiver() *Receiver { return &Receiver{received: map[uint64]bool{}} }

// Run reads packets from conn until it is closed.
func (r *Receiver) Run(conn net.PacketConn) {
	buf := make([]byte, PacketSize)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(buf)
		r.mu.Lock()
		r.received[seq] = true
		r.mu.Unlock()
	}
}

// Report is the result over a range of sequence numbers.
type Report struct {
	// Sent and Received count packets in the range; Lost the difference.
	Sent, Received, Lost uint64
	// LongestGap is the longest run of consecutive missing packets, and
	// LossWindow that run times the interval.
	LongestGap uint64
	LossWindow time.Duration
}

// String sums the report up in one line.
func (r Report) String() string {
	return fmt.Sprintf("sent %d received %d lost %d, loss window %s", r.Sent, r.Received, r.Lost, r.LossWindow)
}

// Report covers sequence numbers [from, to).
func (r *Receiver) Report(from, to uint64, interval time.Duration) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rep Report
	var gap uint64
	for s := from; s < to; s++ {
		rep.Sent++
		if r.received[s] {
			rep.Received++
			gap = 0
			continue
		}
		gap++
		rep.LongestGap = max(rep.LongestGap, gap)
	}
	rep.Lost = rep.Sent - rep.Received
	rep.LossWindow = time.Duration(rep.LongestGap) * interval
	return rep
}

// Highest returns one more than the highest sequence number received (0
// when nothing arrived): the end of the range a receiver that does not know
// the sender's count can report on.
func (r *Receiver) Highest() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var h uint64
	for s := range r.received {
		h = max(h, s+1)
	}
	return h
}

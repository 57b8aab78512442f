package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// FlowPort is the UDP port the flow meter uses at both ends.
const FlowPort = 9

// Flow is a steady bidirectional UDP flow between two hosts with sequence
// numbers: the loss window of a failover is the longest run of packets
// missing in each direction, times the packet interval (DESIGN.md section
// 6). Its sockets are opened inside the namespaces; the goroutines run in
// this process.
type Flow struct {
	interval time.Duration
	dirs     [2]*flowDir
	stop     chan struct{}
	wg       sync.WaitGroup
}

type flowDir struct {
	name string
	src  *net.UDPConn
	dst  *net.UDPConn
	to   *net.UDPAddr

	mu sync.Mutex
	// Guarded by mu.
	sent     uint64
	received map[uint64]bool
}

// FlowReport is one direction's result.
type FlowReport struct {
	// Direction is "a->b" style, from the names given to StartFlow.
	Direction string
	// Sent and Received count packets; Lost is the difference.
	Sent, Received, Lost uint64
	// LongestGap is the longest run of consecutive missing packets.
	LongestGap uint64
	// LossWindow is LongestGap times the interval.
	LossWindow time.Duration
}

func (r FlowReport) String() string {
	return fmt.Sprintf("%s: sent %d received %d lost %d, loss window %s", r.Direction, r.Sent, r.Received, r.Lost, r.LossWindow)
}

// StartFlow sends a packet every interval from a to b and from b to a.
func StartFlow(aNS *netns.NS, aName string, a netip.Addr, bNS *netns.NS, bName string, b netip.Addr, interval time.Duration) (*Flow, error) {
	open := func(ns *netns.NS, addr netip.Addr) (*net.UDPConn, error) {
		var c *net.UDPConn
		err := ns.Do(func() error {
			var err error
			c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, FlowPort)))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("lab: flow socket on %s in %s: %w", addr, ns.Name, err)
		}
		return c, nil
	}
	ca, err := open(aNS, a)
	if err != nil {
		return nil, err
	}
	cb, err := open(bNS, b)
	if err != nil {
		ca.Close()
		return nil, err
	}
	f := &Flow{interval: interval, stop: make(chan struct{})}
	f.dirs[0] = &flowDir{name: aName + "->" + bName, src: ca, dst: cb, to: net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, FlowPort)), received: map[uint64]bool{}}
	f.dirs[1] = &flowDir{name: bName + "->" + aName, src: cb, dst: ca, to: net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, FlowPort)), received: map[uint64]bool{}}
	for _, d := range f.dirs {
		f.wg.Add(2)
		go f.send(d)
		go f.receive(d)
	}
	return f, nil
}

func (f *Flow) send(d *flowDir) {
	defer f.wg.Done()
	t := time.NewTicker(f.interval)
	defer t.Stop()
	buf := make([]byte, 64)
	var seq uint64
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		binary.BigEndian.PutUint64(buf, seq)
		// A send error (no route during the failover) is a lost packet,
		// which is what is being measured.
		_, _ = d.src.WriteToUDP(buf, d.to)
		seq++
		d.mu.Lock()
		d.sent = seq
		d.mu.Unlock()
	}
}

func (f *Flow) receive(d *flowDir) {
	defer f.wg.Done()
	buf := make([]byte, 64)
	for {
		n, _, err := d.dst.ReadFromUDP(buf)
		if err != nil {
			return // closed by Stop
		}
		if n < 8 {
			continue
		}
		seq := binary.BigEndian.Uint64(buf)
		d.mu.Lock()
		d.received[seq] = true
		d.mu.Unlock()
	}
}

// Mark returns the current sent counters, to restrict a later report to
// what happened after this point (see ReportSince).
func (f *Flow) Mark() [2]uint64 {
	var m [2]uint64
	for i, d := range f.dirs {
		d.mu.Lock()
		m[i] = d.sent
		d.mu.Unlock()
	}
	return m
}

// ReportSince reports each direction over the packets sent between mark and
// now, ignoring the last grace worth of packets that may still be in
// flight.
func (f *Flow) ReportSince(mark [2]uint64, grace time.Duration) [2]FlowReport {
	var out [2]FlowReport
	skip := uint64(grace / f.interval)
	for i, d := range f.dirs {
		d.mu.Lock()
		end := d.sent
		if end > mark[i]+skip {
			end -= skip
		}
		r := FlowReport{Direction: d.name}
		var gap uint64
		for s := mark[i]; s < end; s++ {
			r.Sent++
			if d.received[s] {
				r.Received++
				gap = 0
				continue
			}
			gap++
			r.LongestGap = max(r.LongestGap, gap)
		}
		d.mu.Unlock()
		r.Lost = r.Sent - r.Received
		r.LossWindow = time.Duration(r.LongestGap) * f.interval
		out[i] = r
	}
	return out
}

// Stop ends the flow and closes its sockets.
func (f *Flow) Stop() {
	select {
	case <-f.stop:
		return
	default:
	}
	close(f.stop)
	for _, d := range f.dirs {
		d.src.Close()
	}
	f.wg.Wait()
}

package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/multihomed/multihomed/internal/flowmeter"
	"github.com/multihomed/multihomed/internal/netns"
)

// FlowPort is the UDP port the flow meter uses at both ends.
const FlowPort = 9

// Flow is a steady bidirectional UDP flow between two hosts with sequence
// numbers (package flowmeter): the loss window of a failover is the longest
// run of packets missing in each direction, times the packet interval
// (DESIGN.md section 6). Its sockets are opened inside the namespaces; the
// goroutines run in this process.
type Flow struct {
	interval time.Duration
	// addrs are the two ends, in StartFlow's order.
	addrs  [2]netip.Addr
	dirs   [2]*flowDir
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type flowDir struct {
	name string
	src  *net.UDPConn
	to   *net.UDPAddr
	recv *flowmeter.Receiver

	mu sync.Mutex
	// sent is guarded by mu.
	sent uint64
}

// FlowReport is one direction's result.
type FlowReport struct {
	// Direction is "a->b" style, from the names given to StartFlow.
	Direction string
	flowmeter.Report
}

// String is the direction and its report in one line.
func (r FlowReport) String() string { return fmt.Sprintf("%s: %s", r.Direction, r.Report) }

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
	ctx, cancel := context.WithCancel(context.Background())
	f := &Flow{interval: interval, addrs: [2]netip.Addr{a, b}, cancel: cancel}
	f.dirs[0] = &flowDir{name: aName + "->" + bName, src: ca, to: net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, FlowPort)), recv: flowmeter.NewReceiver()}
	f.dirs[1] = &flowDir{name: bName + "->" + aName, src: cb, to: net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, FlowPort)), recv: flowmeter.NewReceiver()}
	// Each direction's packets arrive on the other direction's socket.
	recvOn := [2]*net.UDPConn{cb, ca}
	for i, d := range f.dirs {
		f.wg.Add(2)
		go func() {
			defer f.wg.Done()
			flowmeter.Send(ctx, d.src, d.to, interval, func(n uint64) {
				d.mu.Lock()
				d.sent = n
				d.mu.Unlock()
			})
		}()
		go func() { defer f.wg.Done(); d.recv.Run(recvOn[i]) }()
	}
	return f, nil
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
	now := f.Mark()
	for i, d := range f.dirs {
		end := now[i]
		if end > mark[i]+skip {
			end -= skip
		}
		out[i] = FlowReport{Direction: d.name, Report: d.recv.Report(mark[i], end, f.interval)}
	}
	return out
}

// Stop ends the flow and closes its sockets.
func (f *Flow) Stop() {
	f.cancel()
	for _, d := range f.dirs {
		d.src.Close()
	}
	f.wg.Wait()
}

package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// SourceSink receives UDP datagrams in a namespace and records, per flow
// (the datagram's payload is its tag), where each one came from: what the
// internet host sees of the site's addresses.
type SourceSink struct {
	conn *net.UDPConn
	done chan struct{}

	mu sync.Mutex
	// seen holds, by tag, every datagram's source and arrival, guarded by
	// mu (a few thousand per test).
	seen map[string][]Arrival
}

// Arrival is one datagram received.
type Arrival struct {
	From netip.Addr
	At   time.Time
}

// StartSourceSink listens on addr:port inside ns.
func StartSourceSink(ns *netns.NS, addr netip.Addr, port uint16) (*SourceSink, error) {
	s := &SourceSink{done: make(chan struct{}), seen: map[string][]Arrival{}}
	err := ns.Do(func() error {
		var err error
		s.conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, port)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: sink on %s in %s: %w", addr, ns.Name, err)
	}
	go func() {
		defer close(s.done)
		buf := make([]byte, 512)
		for {
			n, from, err := s.conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			tag := string(buf[:n])
			s.seen[tag] = append(s.seen[tag], Arrival{From: from.Addr().Unmap(), At: time.Now()})
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// Last returns the source of the flow's latest datagram.
func (s *SourceSink) Last(tag string) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.seen[tag]
	if len(a) == 0 {
		return netip.Addr{}, false
	}
	return a[len(a)-1].From, true
}

// FirstFrom returns when the flow's first datagram from inside p arrived
// after t.
func (s *SourceSink) FirstFrom(tag string, p netip.Prefix, t time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.seen[tag] {
		if a.At.After(t) && p.Contains(a.From) {
			return a.At, true
		}
	}
	return time.Time{}, false
}

// Close stops the sink.
func (s *SourceSink) Close() {
	s.conn.Close()
	<-s.done
}

// Sender sends its tag as a UDP datagram every interval from one socket
// (one flow: one 5-tuple for its whole life) inside a namespace.
type Sender struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// StartSender sends from src (port 0: any) to dst inside ns until Stop.
func StartSender(ns *netns.NS, src netip.Addr, dst netip.AddrPort, tag string, interval time.Duration) (*Sender, error) {
	var c *net.UDPConn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(dst))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: sender from %s in %s: %w", src, ns.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer c.Close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			_, _ = c.Write([]byte(tag)) // errors (no route yet) are the flow's loss
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// Stop ends the flow.
func (s *Sender) Stop() {
	s.cancel()
	<-s.done
}

// ServeGreeting accepts TCP connections on addr:port inside ns and writes
// greeting to each; the returned function stops it.
func ServeGreeting(ns *netns.NS, addr netip.Addr, port uint16, greeting string) (func(), error) {
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", netip.AddrPortFrom(addr, port).String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: listen on %s in %s: %w", addr, ns.Name, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, greeting)
			c.Close()
		}
	}()
	return func() { l.Close(); wg.Wait() }, nil
}

// DialGreeting connects from ns to each of addrs in turn, as a client does
// with a name's answers, and returns the address that answered with the
// greeting; the error lists every address that failed and why.
func DialGreeting(ns *netns.NS, addrs []netip.Addr, port uint16, greeting string, timeout time.Duration) (netip.Addr, error) {
	var errs []error
	for _, a := range addrs {
		var got []byte
		err := ns.Do(func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(a, port).String(), timeout)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(timeout))
			got, err = io.ReadAll(c)
			return err
		})
		if err == nil && string(got) == greeting {
			return a, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v (read %q)", a, err, got))
	}
	if len(errs) == 0 {
		return netip.Addr{}, errors.New("no address to dial")
	}
	return netip.Addr{}, errors.Join(errs...)
}

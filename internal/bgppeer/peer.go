package bgppeer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Notification is a NOTIFICATION the peer received (RFC 4271 section 4.5).
type Notification struct {
	Code, Subcode uint8
}

// String names the NOTIFICATION by code and subcode.
func (n Notification) String() string { return fmt.Sprintf("notification %d/%d", n.Code, n.Subcode) }

// Peer is one listening test speaker. Its methods are safe for concurrent
// use.
type Peer struct {
	ln   net.Listener
	asn  uint32
	id   netip.Addr
	hold uint16

	mu     sync.Mutex
	conn   net.Conn
	notifs []Notification
	closed chan struct{} // closed when the established connection ends
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Listen listens on addr (such as 127.0.0.2:17900) as AS asn with router ID
// id, offering hold time hold seconds.
func Listen(addr string, asn uint32, id netip.Addr, hold uint16) (*Peer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bgppeer: listen %s: %w", addr, err)
	}
	return &Peer{ln: ln, asn: asn, id: id, hold: hold, closed: make(chan struct{}), stop: make(chan struct{})}, nil
}

// Accept waits for the speaker to connect, exchanges OPEN and KEEPALIVE
// and returns once the session is established from the speaker's side too
// (its KEEPALIVE arrived). It then reads everything in the background and
// sends a KEEPALIVE every hold/3.
func (p *Peer) Accept(ctx context.Context) error {
	if d, ok := ctx.Deadline(); ok {
		_ = p.ln.(*net.TCPListener).SetDeadline(d)
	}
	conn, err := p.ln.Accept()
	if err != nil {
		return fmt.Errorf("bgppeer: accept: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	typ, _, err := readMessage(conn)
	if err != nil || typ != TypeOpen {
		conn.Close()
		return fmt.Errorf("bgppeer: want OPEN, got type %d: %v", typ, err)
	}
	if _, err := conn.Write(append(Open(p.asn, p.hold, p.id), Keepalive()...)); err != nil {
		conn.Close()
		return fmt.Errorf("bgppeer: send OPEN: %w", err)
	}
	typ, body, err := readMessage(conn)
	if err != nil || typ != TypeKeepalive {
		conn.Close()
		if typ == TypeNotification && len(body) >= 2 {
			return fmt.Errorf("bgppeer: speaker refused the OPEN: %v", Notification{body[0], body[1]})
		}
		return fmt.Errorf("bgppeer: want KEEPALIVE, got type %d: %v", typ, err)
	}
	_ = conn.SetDeadline(time.Time{})
	p.mu.Lock()
	p.conn = conn
	p.mu.Unlock()
	p.wg.Add(2)
	go p.read(conn)
	go p.keepalive(conn)
	return nil
}

func (p *Peer) read(conn net.Conn) {
	defer p.wg.Done()
	defer close(p.closed)
	for {
		typ, body, err := readMessage(conn)
		if err != nil {
			return
		}
		if typ == TypeNotification && len(body) >= 2 {
			p.mu.Lock()
			p.notifs = append(p.notifs, Notification{body[0], body[1]})
			p.mu.Unlock()
		}
	}
}

func (p *Peer) keepalive(conn net.Conn) {
	defer p.wg.Done()
	t := time.NewTicker(time.Duration(p.hold) * time.Second / 3)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.closed:
			return
		case <-t.C:
			if _, err := conn.Write(Keepalive()); err != nil {
				return
			}
		}
	}
}

// Send writes raw bytes (one or more messages) on the session.
func (p *Peer) Send(b []byte) error {
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn == nil {
		return errors.New("bgppeer: no session")
	}
	_, err := conn.Write(b)
	return err
}

// Notifications returns the NOTIFICATIONs received so far.
func (p *Peer) Notifications() []Notification {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Notification(nil), p.notifs...)
}

// Closed is closed when the established connection has ended.
func (p *Peer) Closed() <-chan struct{} { return p.closed }

// Close ends the session and the listener and waits for the goroutines.
func (p *Peer) Close() {
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	close(p.stop)
	p.wg.Wait()
}

func readMessage(r io.Reader) (uint8, []byte, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint16(h[16:]))
	if n < HeaderLen {
		return 0, nil, fmt.Errorf("bgppeer: bad length %d", n)
	}
	body := make([]byte, n-HeaderLen)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h[18], body, nil
}

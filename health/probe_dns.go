package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsProber sends one query over UDP from a fresh socket (so a fresh random
// source port) and checks the response: same ID and question, RCODE
// NOERROR, and with expect_answer at least one answer of the queried type.
type dnsProber struct {
	pin    pin
	port   uint16
	q      dnsmessage.Question
	answer bool
	name   string // the query as configured, for errors
	buf    []byte
}

func newDNSProber(p pin, t Target) (*dnsProber, error) {
	name, err := dnsName(t.Query)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", t.Query, err)
	}
	typ, ok := dnsTypes[strings.ToUpper(t.QueryType)]
	if !ok {
		return nil, fmt.Errorf("query_type %q is not supported", t.QueryType)
	}
	return &dnsProber{
		pin: p, port: t.Port, answer: t.ExpectAnswer, name: t.Query + " " + strings.ToUpper(t.QueryType),
		q:   dnsmessage.Question{Name: name, Type: typ, Class: dnsmessage.ClassINET},
		buf: make([]byte, 4096),
	}, nil
}

// Probe sends the query and waits for a matching response.
func (p *dnsProber) Probe(ctx context.Context) (time.Duration, error) {
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return 0, err
	}
	if err := b.Question(p.q); err != nil {
		return 0, fmt.Errorf("dns: build query: %w", err)
	}
	msg, err := b.Finish()
	if err != nil {
		return 0, fmt.Errorf("dns: build query: %w", err)
	}

	d, err := p.pin.dialer("udp")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	server := netip.AddrPortFrom(p.pin.dst, p.port)
	c, err := d.DialContext(ctx, p.pin.network("udp"), server.String())
	if err != nil {
		return 0, fmt.Errorf("dns %v: %w", server, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(msg); err != nil {
		return 0, fmt.Errorf("dns %v: send: %w", server, err)
	}
	for {
		n, err := c.Read(p.buf)
		if err != nil {
			return 0, fmt.Errorf("dns %v %s: %w", server, p.name, deadlineErr(err, start))
		}
		done, err := p.check(id, p.buf[:n])
		if !done {
			continue // not our response: keep waiting
		}
		if err != nil {
			return 0, fmt.Errorf("dns %v %s: %w", server, p.name, err)
		}
		return time.Since(start), nil
	}
}

// check parses a response. done is false when the message is not the
// response to this query (it is then ignored).
func (p *dnsProber) check(id uint16, b []byte) (done bool, err error) {
	var parser dnsmessage.Parser
	h, err := parser.Start(b)
	if err != nil || h.ID != id || !h.Response {
		return false, nil
	}
	q, err := parser.Question()
	if err != nil || q.Type != p.q.Type || q.Class != p.q.Class || !strings.EqualFold(q.Name.String(), p.q.Name.String()) {
		return false, nil
	}
	if h.RCode != dnsmessage.RCodeSuccess {
		return true, fmt.Errorf("rcode %s, want NOERROR", rcodeName(h.RCode))
	}
	if !p.answer {
		return true, nil
	}
	if err := parser.SkipAllQuestions(); err != nil {
		return true, fmt.Errorf("malformed response: %w", err)
	}
	for {
		ah, err := parser.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			return true, fmt.Errorf("NOERROR but no %s answer", strings.TrimPrefix(p.q.Type.String(), "Type"))
		}
		if err != nil {
			return true, fmt.Errorf("malformed answer: %w", err)
		}
		if ah.Type == p.q.Type {
			return true, nil
		}
		if err := parser.SkipAnswer(); err != nil {
			return true, fmt.Errorf("malformed answer: %w", err)
		}
	}
}

func rcodeName(r dnsmessage.RCode) string {
	switch r {
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return fmt.Sprintf("%d", r)
}

package health

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Probe replies come from the network: anyone on the path can send a
// prober bytes. The parsers must not panic on any, and must take as the
// reply only a packet that is one.

// echoReplyFor is the reply a target would send to p's echo request seq:
// for IPv4 behind an IP header of ihl 32-bit words.
func echoReplyFor(p *icmpProber, v4 bool, seq uint16, ihl int) []byte {
	req := bytes.Clone(p.echoRequest(seq))
	req[0] = icmpv6EchoReply
	if v4 {
		req[0] = icmpv4EchoReply
		hdr := make([]byte, ihl*4)
		hdr[0] = 0x40 | byte(ihl)
		return append(hdr, req...)
	}
	return req
}

// FuzzICMPReply: replySeq accepts a packet only if it is an echo reply
// (code 0) with the prober's identifier and cookie, and then returns the
// sequence number it carries.
func FuzzICMPReply(f *testing.F) {
	p4 := newICMPProber(pin{dst: netip.MustParseAddr("192.0.2.1")})
	p6 := newICMPProber(pin{dst: netip.MustParseAddr("2001:db8::1")})
	// The real replies are taken, with their sequence numbers: a parser
	// that took nothing would pass the properties below.
	for _, c := range []struct {
		p   *icmpProber
		v4  bool
		ihl int
	}{{p4, true, 5}, {p4, true, 6}, {p6, false, 0}} {
		if seq, ok := c.p.replySeq(c.v4, echoReplyFor(c.p, c.v4, 4242, c.ihl)); !ok || seq != 4242 {
			f.Fatalf("a real reply (IPv4 %v, ihl %d): %d, %v; want 4242, true", c.v4, c.ihl, seq, ok)
		}
	}
	f.Add(true, echoReplyFor(p4, true, 7, 5))
	f.Add(true, echoReplyFor(p4, true, 8, 6)) // IP options
	f.Add(true, echoReplyFor(p4, true, 9, 15))
	f.Add(false, echoReplyFor(p6, false, 7, 0))
	f.Add(false, p6.echoRequest(3)) // our own request, looped back
	f.Add(true, []byte{0x4f, 0, 0})
	f.Add(false, []byte{})
	f.Fuzz(func(t *testing.T, v4 bool, b []byte) {
		p, typ := p6, byte(icmpv6EchoReply)
		if v4 {
			p, typ = p4, icmpv4EchoReply
		}
		seq, ok := p.replySeq(v4, b)
		if !ok {
			return
		}
		msg := b
		if v4 {
			msg = b[int(b[0]&0x0f)*4:]
		}
		switch {
		case msg[0] != typ || msg[1] != 0:
			t.Fatalf("accepted type %d code %d, not an echo reply", msg[0], msg[1])
		case binary.BigEndian.Uint16(msg[4:]) != p.id:
			t.Fatalf("accepted identifier %d, the prober's is %d", binary.BigEndian.Uint16(msg[4:]), p.id)
		case !bytes.Equal(msg[echoHeaderLen:echoLen], p.cookie[:]):
			t.Fatal("accepted a reply without the prober's cookie")
		case binary.BigEndian.Uint16(msg[6:]) != seq:
			t.Fatalf("sequence %d returned for a reply carrying %d", seq, binary.BigEndian.Uint16(msg[6:]))
		}
	})
}

// dnsResponse is a response to q with the given ID, RCODE and answers of
// type typ (A records).
func dnsResponse(t testing.TB, id uint16, q dnsmessage.Question, rcode dnsmessage.RCode, answers int) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, Response: true, RCode: rcode})
	b.EnableCompression()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.StartQuestions())
	must(b.Question(q))
	must(b.StartAnswers())
	for i := range answers {
		must(b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{192, 0, 2, byte(i)}}))
	}
	msg, err := b.Finish()
	must(err)
	return msg
}

// FuzzDNSReply: check takes as the response only a message with the
// query's ID and question; when it calls that response good, an answer
// of the queried type is in it (expect_answer).
func FuzzDNSReply(f *testing.F) {
	p, err := newDNSProber(pin{dst: netip.MustParseAddr("192.0.2.53")}, Target{Query: "www.example", QueryType: "A", ExpectAnswer: true, Port: 53})
	if err != nil {
		f.Fatal(err)
	}
	const id = 0x1234
	if done, err := p.check(id, dnsResponse(f, id, p.q, dnsmessage.RCodeSuccess, 1)); !done || err != nil {
		f.Fatalf("a good response: %v, %v; want taken, no error", done, err)
	}
	if done, err := p.check(id, dnsResponse(f, id, p.q, dnsmessage.RCodeSuccess, 0)); !done || err == nil {
		f.Fatalf("a response with no answer: %v, %v; want taken, an error", done, err)
	}
	f.Add(dnsResponse(f, id, p.q, dnsmessage.RCodeSuccess, 1))
	f.Add(dnsResponse(f, id, p.q, dnsmessage.RCodeSuccess, 0))
	f.Add(dnsResponse(f, id, p.q, dnsmessage.RCodeNameError, 0))
	f.Add(dnsResponse(f, id+1, p.q, dnsmessage.RCodeSuccess, 1))
	good := dnsResponse(f, id, p.q, dnsmessage.RCodeSuccess, 2)
	f.Add(good[:len(good)-3]) // cut short
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		done, err := p.check(id, b)
		if !done {
			if err != nil {
				t.Fatalf("not taken as the response, yet an error: %v", err)
			}
			return
		}
		var parser dnsmessage.Parser
		h, perr := parser.Start(b)
		if perr != nil || h.ID != id || !h.Response {
			t.Fatalf("taken as the response: header %+v, %v", h, perr)
		}
		if err != nil {
			return
		}
		if h.RCode != dnsmessage.RCodeSuccess {
			t.Fatalf("good with RCODE %v", h.RCode)
		}
		if perr := parser.SkipAllQuestions(); perr != nil {
			t.Fatalf("good, but its questions do not parse: %v", perr)
		}
		for {
			ah, perr := parser.AnswerHeader()
			if perr != nil {
				t.Fatalf("good without an answer of type %v: %v", p.q.Type, perr)
			}
			if ah.Type == p.q.Type {
				return
			}
			if perr := parser.SkipAnswer(); perr != nil {
				t.Fatalf("good without an answer of type %v: %v", p.q.Type, perr)
			}
		}
	})
}

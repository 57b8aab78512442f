package health

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Test responders: used on loopback by the prober tests and inside the
// "internet" namespace by the integration test (which re-executes the test
// binary as a responder process).

// responderHTTP serves /health (200, body "ok multihomed"), /redirect (302 to
// /health) and /teapot (418).
func responderHTTP() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok multihomed")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/health", http.StatusFound)
	})
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	return mux
}

// quietLog drops the servers' expected handshake errors.
var quietLog = log.New(io.Discard, "", 0)

// Names the test DNS server knows.
const (
	dnsZoneName = "example.org."
	dnsNoAAAA   = "v4only.example.org."
)

var (
	dnsAnswer6 = netip.MustParseAddr("2001:db8:9000:1::10")
	dnsAnswer4 = netip.MustParseAddr("203.0.113.10")
)

// serveDNS answers queries on pc until it is closed: example.org has an
// AAAA and an A record, v4only.example.org only an A record, anything else
// is NXDOMAIN.
func serveDNS(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp, ok := dnsRespond(buf[:n]); ok {
			_, _ = pc.WriteTo(resp, from)
		}
	}
}

func dnsRespond(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	name := q.Name.String()
	if name != dnsZoneName && name != dnsNoAAAA {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	_ = b.StartQuestions()
	_ = b.Question(q)
	_ = b.StartAnswers()
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	if rh.RCode == dnsmessage.RCodeSuccess {
		switch {
		case q.Type == dnsmessage.TypeAAAA && name == dnsZoneName:
			_ = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: dnsAnswer6.As16()})
		case q.Type == dnsmessage.TypeA:
			_ = b.AResource(rr, dnsmessage.AResource{A: dnsAnswer4.As4()})
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

// selfSigned returns a TLS certificate valid for the given IP addresses and
// its PEM encoding (to be trusted through ca_file).
func selfSigned(ips ...netip.Addr) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "multihomed test responder"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"responder.example.org"},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

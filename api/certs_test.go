package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a CA with a server certificate and client certificates, and
// a second CA nobody trusts.
type testPKI struct {
	pool                                               *x509.CertPool
	server, viewer, operator, admin, stranger, foreign tls.Certificate
	dir                                                string
}

type certSpec struct {
	cn    string
	dns   []string
	ips   []net.IP
	usage x509.ExtKeyUsage
}

func newCert(t *testing.T, spec certSpec, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (tls.Certificate, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: spec.cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: spec.dns, IPAddresses: spec.ips,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{spec.usage}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}, c, key
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	_, ca, caKey := newCert(t, certSpec{cn: "noc test CA"}, nil, nil, true)
	_, foreignCA, foreignKey := newCert(t, certSpec{cn: "someone else's CA"}, nil, nil, true)
	p := &testPKI{pool: x509.NewCertPool(), dir: t.TempDir()}
	p.pool.AddCert(ca)
	client := x509.ExtKeyUsageClientAuth
	p.server, _, _ = newCert(t, certSpec{cn: "multihomed", dns: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, usage: x509.ExtKeyUsageServerAuth}, ca, caKey, false)
	p.viewer, _, _ = newCert(t, certSpec{cn: "noc-dashboard", usage: client}, ca, caKey, false)
	p.operator, _, _ = newCert(t, certSpec{cn: "noc-alice", dns: []string{"ops.example.net"}, usage: client}, ca, caKey, false)
	p.admin, _, _ = newCert(t, certSpec{cn: "noc-root", usage: client}, ca, caKey, false)
	p.stranger, _, _ = newCert(t, certSpec{cn: "intern", usage: client}, ca, caKey, false)
	p.foreign, _, _ = newCert(t, certSpec{cn: "noc-alice", dns: []string{"ops.example.net"}, usage: client}, foreignCA, foreignKey, false)
	p.write(t, "ca.pem", ca.Raw, nil)
	p.write(t, "server", p.server.Certificate[0], p.server.PrivateKey.(*ecdsa.PrivateKey))
	p.write(t, "operator", p.operator.Certificate[0], p.operator.PrivateKey.(*ecdsa.PrivateKey))
	return p
}

// write saves a certificate as name.pem (or name itself for a CA) and its
// key as name.key.
func (p *testPKI) write(t *testing.T, name string, der []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	certPath := filepath.Join(p.dir, name)
	if key != nil {
		certPath += ".pem"
		kd, _ := x509.MarshalECPrivateKey(key)
		if err := os.WriteFile(filepath.Join(p.dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *testPKI) path(name string) string { return filepath.Join(p.dir, name) }

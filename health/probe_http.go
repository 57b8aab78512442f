package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
)

// maxBody is how much of a response body is read and searched.
const maxBody = 64 << 10

// httpProber fetches a URL over a fresh connection each time (no keep-alive,
// so every probe tests the TCP and TLS handshakes through the uplink too).
// Every connection, redirects included, goes to the target's address: names
// are never resolved.
type httpProber struct {
	pin    pin
	target Target
	client *http.Client
}

func newHTTPProber(p pin, t Target) (*httpProber, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	hp := &httpProber{pin: p, target: t}
	tr := &http.Transport{
		Proxy:                  nil, // never through a proxy from the environment
		DialContext:            hp.dial,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if t.Kind == KindHTTPS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.TLSServerName}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w; point it at a readable PEM file", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file: %s holds no PEM certificate; point it at a PEM bundle", t.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	hp.client = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !t.FollowRedirects {
				return http.ErrUseLastResponse
			}
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
	return hp, nil
}

func (p *httpProber) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	d, err := p.pin.dialer("tcp")
	if err != nil {
		return nil, err
	}
	return d.DialContext(ctx, p.pin.network("tcp"), netip.AddrPortFrom(p.pin.dst, p.target.Port).String())
}

// Probe fetches the URL and checks the status and, if configured, the body.
func (p *httpProber) Probe(ctx context.Context) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.target.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("http request: %w", err)
	}
	req.Header.Set("User-Agent", "multihomed-health/1")
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("http get %s: %w", p.target.URL, deadlineErr(err, start))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, fmt.Errorf("http get %s: read body: %w", p.target.URL, deadlineErr(err, start))
	}
	rtt := time.Since(start)
	if resp.StatusCode != p.target.ExpectStatus {
		return 0, fmt.Errorf("http get %s: status %d, want %d", p.target.URL, resp.StatusCode, p.target.ExpectStatus)
	}
	if s := p.target.BodyContains; s != "" && !bytes.Contains(body, []byte(s)) {
		return 0, fmt.Errorf("http get %s: body does not contain %q", p.target.URL, trimForError(s))
	}
	return rtt, nil
}

func trimForError(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// Close releases idle connections (there are none without keep-alive).
func (p *httpProber) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

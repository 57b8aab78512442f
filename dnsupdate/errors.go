package dnsupdate

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// Errors Set wraps, so callers (status, metrics, the API) can tell the
// causes apart with errors.Is. The wrapping message says what to fix.
var (
	// ErrUnreachable: no answer from the server (down, wrong address or
	// port, filtered). The runner retries.
	ErrUnreachable = errors.New("server unreachable")
	// ErrBadKey: the server rejected the TSIG signature (BADKEY, BADSIG,
	// BADTIME) or its answer did not verify with our key.
	ErrBadKey = errors.New("TSIG key rejected")
	// ErrRefused: the server answered REFUSED: it does not let this key
	// update (or query) the zone.
	ErrRefused = errors.New("server refused")
	// ErrNotAuth: the server is not authoritative for the zone (NOTAUTH,
	// or an answer without the AA bit).
	ErrNotAuth = errors.New("server not authoritative for the zone")
	// ErrConflict: a prerequisite failed: the records changed between our
	// read and our update. The next attempt reads again.
	ErrConflict = errors.New("records changed since they were read")
	// ErrServer: any other error code from the server.
	ErrServer = errors.New("server error")
)

// classify turns the outcome of one exchange into nil or an error wrapping
// one of the sentinels above. what names the exchange ("query www.site.example.
// AAAA", "update site.example."). r may be non-nil with err set: miekg/dns
// returns the answer along with a TSIG verification error.
func (u *Updater) classify(what string, r *dns.Msg, err error) error {
	at := fmt.Sprintf("dnsupdate: %s at %s", what, u.cfg.server)
	if r == nil {
		if err == nil {
			err = errors.New("no answer")
		}
		return fmt.Errorf("%s: %w: %v; check the server runs and listens there", at, ErrUnreachable, err)
	}
	if t := r.IsTsig(); t != nil && t.Error != dns.RcodeSuccess {
		return fmt.Errorf("%s: %w (%s): check key %s, algorithm and secret match the server's key statement, and both clocks", at, ErrBadKey, rcodeName(int(t.Error)), u.cfg.keyName)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: the answer did not verify (%v); check the secret", at, ErrBadKey, err)
	}
	if r.IsTsig() == nil && r.Rcode != dns.RcodeRefused {
		// We sign every request; an unsigned answer cannot be trusted (RFC 8945
		// section 5.3), except REFUSED, which BIND sends unsigned for a zone it
		// does not serve, and which carries no data we act on.
		return fmt.Errorf("%s: %w: the answer is not signed (%s); check the server knows key %s", at, ErrBadKey, rcodeName(r.Rcode), u.cfg.keyName)
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return nil
	case dns.RcodeRefused:
		if r.Opcode == dns.OpcodeUpdate {
			return fmt.Errorf("%s: %w: grant key %s updates of AAAA records in zone %s (BIND: update-policy)", at, ErrRefused, u.cfg.keyName, u.cfg.zone)
		}
		return fmt.Errorf("%s: %w: the server does not answer for zone %s; point server at the zone's primary", at, ErrRefused, u.cfg.zone)
	case dns.RcodeNotAuth:
		return fmt.Errorf("%s: %w: point server at the primary of %s", at, ErrNotAuth, u.cfg.zone)
	case dns.RcodeYXRrset, dns.RcodeNXRrset, dns.RcodeYXDomain:
		return fmt.Errorf("%s: %w (%s)", at, ErrConflict, rcodeName(r.Rcode))
	default:
		return fmt.Errorf("%s: %w: %s", at, ErrServer, rcodeName(r.Rcode))
	}
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/multihomed/multihomed/routing"
)

// PAStatus is PA mode's part of Status.
type PAStatus struct {
	// Mappings are the NPTv6 mappings in place after the last Set (its
	// returned state), and Counters their counters; CountersError says why
	// they could not be read.
	Mappings      []routing.NPTMapping
	Counters      []routing.NPTCounters
	CountersError string
	// NAT44 are the source NAT rules decided.
	NAT44 []routing.NATRule
	// DNS is the DNS runner's status (nil without a dns section);
	// DNSUplinks the uplinks whose addresses are published, and DNSError
	// why the desired records could not be computed.
	DNS        *routing.DNSStatus
	DNSUplinks []string
	DNSError   string
}

// ReturnPath is what the loop needs of the return-path marking
// (returnpath.Steering): Set is declarative (one atomic batch, nothing sent
// when in step, remembered connections of unchanged uplinks kept) and
// returns the uplinks steered. Only the loop goroutine calls it.
type ReturnPath interface {
	Set(ctx context.Context, inside netip.Prefix, uplinks []routing.ReturnUplink) ([]routing.ReturnUplink, error)
}

// applyPADatapath applies d's NPTv6 mappings, return-path marking and
// NAT44 rules (PA mode).
func (l *Loop) applyPADatapath(ctx context.Context, d Desired) []error {
	if d.PA == nil {
		return nil
	}
	var errs []error
	if l.deps.Translator != nil {
		if _, err := l.deps.Translator.Set(ctx, d.PA.Mappings); err != nil {
			errs = append(errs, fmt.Errorf("nptv6: %w", err))
		}
	}
	if l.deps.Return != nil {
		if _, err := l.deps.Return.Set(ctx, l.cfg.Site.InternalPrefix, d.PA.Return); err != nil {
			errs = append(errs, fmt.Errorf("returnpath: %w", err))
		}
	}
	if l.deps.NAT != nil {
		if _, err := l.deps.NAT.Set(ctx, d.PA.NAT44); err != nil {
			errs = append(errs, fmt.Errorf("nat44: %w", err))
		}
	} else if len(d.PA.NAT44) > 0 {
		errs = append(errs, errors.New("nat44: rules decided but no NAT applier wired"))
	}
	return errs
}

// flushNAT deletes the conntrack entries of flows NATed through the
// uplinks that left egress (names, from Decide) and through those whose
// earlier flush failed. An uplink that carries egress again is dropped
// from the list: its flows are current.
func (l *Loop) flushNAT(ctx context.Context, d Desired) error {
	names := d.FlushNAT
	for _, n := range names {
		if !slices.Contains(l.pendingFlush, n) {
			l.pendingFlush = append(l.pendingFlush, n)
		}
	}
	if len(l.pendingFlush) == 0 || l.deps.NAT == nil {
		return nil
	}
	var errs []error
	var keep []string
	for _, name := range l.pendingFlush {
		u, ok := uplinkConfig(l.cfg, name)
		if !ok || u.NAT44 == nil {
			continue
		}
		if dec, ok := d.Decision(name); ok && dec.Egress {
			continue
		}
		n, err := l.deps.NAT.FlushUplink(ctx, u.Interface)
		if err != nil {
			errs = append(errs, fmt.Errorf("nat44: flush conntrack of %s: %w", name, err))
			keep = append(keep, name)
			continue
		}
		l.log.Info("uplink left egress: conntrack entries of flows NATed through it deleted", "uplink", name, "entries", n)
	}
	l.pendingFlush = keep
	return errors.Join(errs...)
}

// paStatus reads back the PA datapath and the DNS runner for Status.
func (l *Loop) paStatus(ctx context.Context, d Desired) *PAStatus {
	if d.PA == nil {
		return nil
	}
	st := &PAStatus{NAT44: d.PA.NAT44, DNSUplinks: d.PA.DNSUplinks, DNSError: d.PA.DNSError, Mappings: d.PA.Mappings}
	if l.deps.Translator != nil {
		cs, err := l.deps.Translator.Counters(ctx)
		if err != nil {
			st.CountersError = err.Error()
		}
		st.Counters = cs
		st.Mappings = nil
		for _, c := range cs {
			st.Mappings = append(st.Mappings, c.Mapping)
		}
	}
	if l.deps.DNS != nil {
		s := l.deps.DNS.Status()
		st.DNS = &s
	}
	return st
}

// recordDNSEvent adds an event (and a log line) when the DNS runner's
// outcome changes: converged, or failing with another error.
func (l *Loop) recordDNSEvent(now time.Time, st *PAStatus) {
	if st == nil || st.DNS == nil || st.DNS.LastAttempt.IsZero() {
		return
	}
	result := "converged"
	to := StateUp
	if !st.DNS.Converged {
		if st.DNS.LastErr == nil {
			return // a newer state is being applied
		}
		result, to = "failing: "+st.DNS.LastErr.Error(), StateDown
	}
	if result == l.dnsResult {
		return
	}
	l.dnsResult = result
	var pub []string
	for _, h := range st.DNS.Hosts {
		var addrs []string
		for _, a := range h.Published {
			addrs = append(addrs, a.String())
		}
		pub = append(pub, fmt.Sprintf("%s=[%s]", h.Name, strings.Join(addrs, " ")))
	}
	reason := "DNS " + result
	l.history.add(Event{Time: now, From: StateUnknown, To: to, Reason: reason, Actions: []string{"dns " + strings.Join(pub, " ")}})
	if to == StateDown {
		l.log.Warn("DNS update failing; retrying", "zone", st.DNS.Zone, "error", st.DNS.LastErr, "failures", st.DNS.Failures, "next_retry", st.DNS.NextRetry)
	} else {
		l.log.Info("DNS records in step", "zone", st.DNS.Zone, "published", strings.Join(pub, " "))
	}
}

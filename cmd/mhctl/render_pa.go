package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// translationText is an uplink's NPTv6 mapping and its counters (PA mode).
func translationText(t *apiv1.Translation) string {
	if !t.GetActive() {
		return fmt.Sprintf("%s <-> %s INACTIVE (no link: inbound to %s is not translated)", t.GetInternalPrefix(), t.GetPaPrefix(), t.GetPaPrefix())
	}
	s := fmt.Sprintf("%s <-> %s, out %d pkts %d B, in %d pkts %d B", t.GetInternalPrefix(), t.GetPaPrefix(), t.GetOutPackets(), t.GetOutBytes(), t.GetInPackets(), t.GetInBytes())
	if t.GetHairpin() {
		s += fmt.Sprintf(", hairpinned %d", t.GetHairpinned())
	}
	if d := t.GetOutDrops() + t.GetInDrops(); d > 0 {
		s += fmt.Sprintf(", dropped %d (RFC 6296)", d)
	}
	return s
}

// dnsResult is the DNS publication's last result in one phrase.
func dnsResult(d *apiv1.DNS, now time.Time) string {
	switch {
	case d.GetDesiredError() != "":
		return "CANNOT COMPUTE: " + d.GetDesiredError()
	case d.GetLastAttempt() == nil:
		return "no update attempted yet"
	case d.GetConverged():
		return fmt.Sprintf("in step (last attempt %s ago)", ago(d.GetLastAttempt(), now))
	case d.GetLastError() != "":
		s := fmt.Sprintf("FAILING (%s, attempt %s ago): %s", plural(int(d.GetFailures()), "failure", "failures"), ago(d.GetLastAttempt(), now), d.GetLastError())
		if d.GetNextRetry() != nil {
			s += fmt.Sprintf("; retry in %s", short(d.GetNextRetry().AsTime().Sub(now)))
		}
		return s
	}
	return "updating"
}

// renderDNS prints the DNS publication: one line per host with what is
// desired and what the server holds.
func renderDNS(w io.Writer, st *apiv1.Status, now time.Time) error {
	d := st.GetDns()
	if d == nil {
		if st.GetMode() != "pa" {
			fmt.Fprintln(w, "DNS updates are PA mode's; this site runs in mode", st.GetMode())
		} else {
			fmt.Fprintln(w, "no dns section configured: nothing is published")
		}
		return nil
	}
	fmt.Fprintf(w, "zone %s, published via %s: %s\n", dash(d.GetZone()), dash(strings.Join(d.GetVia(), ", ")), dnsResult(d, now))
	tw := newTab(w)
	fmt.Fprintln(tw, "HOST\tDESIRED\tON THE SERVER")
	for _, h := range d.GetHosts() {
		server := "(not read yet)"
		if h.GetKnown() {
			server = dash(strings.Join(h.GetPublished(), " "))
			if !sameSet(h.GetDesired(), h.GetPublished()) {
				server += "  (differs)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.GetName(), dash(strings.Join(h.GetDesired(), " ")), server)
	}
	return tw.Flush()
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

func newTab(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func ago(t *timestamppb.Timestamp, now time.Time) string {
	if t == nil {
		return "-"
	}
	return short(now.Sub(t.AsTime()))
}

// short renders a duration to the second, or to the millisecond below one.
func short(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func ms(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d.AsDuration())/float64(time.Millisecond))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func announcementText(a *apiv1.Announcement) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s prepend=%d", a.GetPrefix(), a.GetPrepend())
	if len(a.GetCommunities()) > 0 {
		fmt.Fprintf(&b, " communities=%s", strings.Join(a.GetCommunities(), ","))
	}
	if len(a.GetLargeCommunities()) > 0 {
		fmt.Fprintf(&b, " large=%s", strings.Join(a.GetLargeCommunities(), ","))
	}
	if a.Med != nil {
		fmt.Fprintf(&b, " med=%d", a.GetMed())
	}
	if a.GetGracefulShutdown() {
		b.WriteString(" GRACEFUL_SHUTDOWN")
	}
	return b.String()
}

func overrideText(o *apiv1.Override, now time.Time) string {
	if o == nil {
		return "-"
	}
	var kind string
	switch {
	case o.GetDrain():
		kind = "drain"
	case o.GetForceDown():
		kind = "force-down"
	default:
		kind = fmt.Sprintf("prepend+%d", o.GetExtraPrepend())
	}
	s := fmt.Sprintf("%s by %s: %q", kind, dash(o.GetWho()), o.GetReason())
	if o.GetExpires() != nil {
		s += " (ends in " + short(o.GetExpires().AsTime().Sub(now)) + ")"
	}
	return s
}

func sessionsText(ss []*apiv1.Session) string {
	up := 0
	for _, s := range ss {
		if s.GetState() == "established" {
			up++
		}
	}
	return fmt.Sprintf("%d/%d", up, len(ss))
}

// targetText is one probe target's live figures and their age.
func targetText(t *apiv1.Target, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: loss %.1f%%, rtt %s last %s mean %s p95, %s", t.GetTarget(), t.GetState(), t.GetLossPercent(),
		ms(t.GetRttLast()), ms(t.GetRttMean()), ms(t.GetRttP95()), plural(int(t.GetSamples()), "sample", "samples"))
	switch {
	case t.GetMeasuredAt() != nil:
		fmt.Fprintf(&b, ", measured %s ago", ago(t.GetMeasuredAt(), now))
	case t.GetSamples() == 0:
		b.WriteString(", not measured yet")
	}
	if t.GetLastError() != "" {
		fmt.Fprintf(&b, " (last error: %s)", t.GetLastError())
	}
	return b.String()
}

// sessionText is one BGP session: state, how long, a hold-down by us and
// its cause, the last real error.
func sessionText(s *apiv1.Session, now time.Time) string {
	line := fmt.Sprintf("%s %s", s.GetNeighbor(), s.GetState())
	if s.GetUptime() != nil {
		line += " up " + short(s.GetUptime().AsDuration())
	} else {
		line += " since " + ago(s.GetSince(), now) + " ago"
	}
	if s.GetReceived() > 0 || s.GetAccepted() > 0 {
		line += fmt.Sprintf(", %d prefixes received, %d accepted", s.GetReceived(), s.GetAccepted())
	}
	switch s.GetImportPhase() {
	case "receiving":
		line += " (initial transfer: received as of the last read, accepted counted at its end)"
	case "counting":
		line += " (every route received is in the RIB; counting them)"
	}
	if s.GetHeldDown() != "" {
		line += ", HELD DOWN: " + s.GetHeldDown() + " (mhctl reset to retry now)"
	}
	if s.GetLastError() != "" {
		line += " (last error: " + s.GetLastError() + ")"
	}
	return line
}

// renderUplinks prints one line per uplink.
func renderUplinks(w io.Writer, st *apiv1.Status, now time.Time) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "UPLINK\tSTATE\tSESSIONS\tANNOUNCED\tEGRESS\tLOSS\tRTT P95\tOVERRIDE\tREASON")
	for _, u := range st.GetUplinks() {
		egress := "no"
		if u.GetEgress() {
			egress = fmt.Sprintf("metric %d", u.GetMetric())
		}
		loss, p95 := "-", "-"
		if u.GetProbes().GetProbed() {
			loss, p95 = fmt.Sprintf("%.1f%%", u.GetProbes().GetLossPercent()), ms(u.GetProbes().GetRttP95())
		}
		ann := "withdrawn"
		if n := len(u.GetAnnounced()); n > 0 {
			ann = plural(n, "prefix", "prefixes")
			if u.GetAnnounced()[0].GetGracefulShutdown() {
				ann += " (gshut)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.GetName(), u.GetState(), sessionsText(u.GetSessions()), ann, egress, loss, p95, overrideText(u.GetOverride(), now), u.GetReason())
	}
	return tw.Flush()
}

// renderStatus prints the whole status: the site, then each uplink with
// what its ISP hears and why, then the egress routes.
func renderStatus(w io.Writer, st *apiv1.Status, now time.Time) error {
	fmt.Fprintf(w, "mode %s, %s, last decision pass %s ago", st.GetMode(), plural(len(st.GetUplinks()), "uplink", "uplinks"), ago(st.GetAt(), now))
	if st.GetWaiting() {
		fmt.Fprint(w, ", STARTUP WAIT (nothing announced yet)")
	}
	fmt.Fprintln(w)
	if st.GetFailStatic() {
		fmt.Fprintf(w, "ALARM fail-static: %s\n", st.GetAlarm())
	}
	if st.GetApplyError() != "" {
		fmt.Fprintf(w, "APPLY ERROR (retrying): %s\n", st.GetApplyError())
	}
	for _, u := range st.GetUplinks() {
		fmt.Fprintf(w, "\n%s (%s): %s — %s\n", u.GetName(), dash(u.GetInterface()), strings.ToUpper(u.GetState()), u.GetReason())
		tw := newTab(w)
		if o := u.GetOverride(); o != nil {
			fmt.Fprintf(tw, "  override\t%s\n", overrideText(o, now))
		}
		p := u.GetProbes()
		if p.GetProbed() {
			fmt.Fprintf(tw, "  probes\t%s: %d/%d targets up (need %d), loss %.1f%%, rtt %s mean %s p95, read %s ago: %s\n",
				p.GetVerdict(), p.GetTargetsUp(), len(p.GetTargets()), p.GetTargetsNeeded(), p.GetLossPercent(), ms(p.GetRttMean()), ms(p.GetRttP95()), ago(p.GetReadAt(), now), dash(p.GetReason()))
			for _, t := range p.GetTargets() {
				fmt.Fprintf(tw, "  target\t%s\n", targetText(t, now))
			}
			// Only once a burst ran or was refused: most uplinks never
			// suspect anything and a line of zeros is noise.
			if p.GetBursts() > 0 || p.GetBurstsSuppressed() > 0 {
				fmt.Fprintf(tw, "  bursts\t%d started, %d extra probes, %d suppressed by the budget\n", p.GetBursts(), p.GetBurstProbes(), p.GetBurstsSuppressed())
			}
		} else {
			fmt.Fprintf(tw, "  probes\tnone configured\n")
		}
		for _, s := range u.GetSessions() {
			fmt.Fprintf(tw, "  session\t%s\n", sessionText(s, now))
		}
		if len(u.GetAnnounced()) == 0 && st.GetMode() != "pa" {
			fmt.Fprintf(tw, "  announced\tnothing (withdrawn)\n")
		}
		for _, a := range u.GetAnnounced() {
			fmt.Fprintf(tw, "  announced\t%s\n", announcementText(a))
		}
		if u.GetEgress() {
			fmt.Fprintf(tw, "  egress\tyes, metric %d\n", u.GetMetric())
		} else {
			fmt.Fprintf(tw, "  egress\tno\n")
		}
		if st.GetInsideAdvertise() {
			if lp := u.GetInsideLocalPref(); lp > 0 {
				fmt.Fprintf(tw, "  inside\tfull-table routes to the core at LOCAL_PREF %d\n", lp)
			} else {
				fmt.Fprintf(tw, "  inside\tnone to the core\n")
			}
		}
		if t := u.GetTranslation(); t != nil {
			fmt.Fprintf(tw, "  nptv6\t%s\n", translationText(t))
		}
		if n := u.GetNat44(); n != "" {
			fmt.Fprintf(tw, "  nat44\tsource %s\n", n)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if st.GetTranslationError() != "" {
		fmt.Fprintf(w, "\nNPTv6 READ-BACK ERROR: %s\n", st.GetTranslationError())
	}
	if d := st.GetDns(); d != nil {
		fmt.Fprintf(w, "\ndns: ")
		if err := renderDNS(w, st, now); err != nil {
			return err
		}
	}
	if err := renderRemote(w, st, now); err != nil {
		return err
	}
	fmt.Fprintln(w, "\negress routes:")
	if len(st.GetEgress()) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, r := range st.GetEgress() {
		var hops []string
		for _, h := range r.GetNextHops() {
			hops = append(hops, fmt.Sprintf("via %s dev %s", h.GetGateway(), h.GetDevice()))
		}
		fmt.Fprintf(w, "  %s metric %d %s\n", r.GetDestination(), r.GetMetric(), strings.Join(hops, " / "))
	}
	return nil
}

// renderRemote prints the other edges' uplinks as this edge learned them
// over iBGP; nothing for a single-edge site.
func renderRemote(w io.Writer, st *apiv1.Status, now time.Time) error {
	if len(st.GetRemoteUplinks()) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nother edges (%s usable):\n", plural(int(st.GetRemoteUsable()), "uplink", "uplinks"))
	tw := newTab(w)
	fmt.Fprintln(tw, "  EDGE\tUPLINK\tSTATE\tAGE\tVIA")
	for _, r := range st.GetRemoteUplinks() {
		state := r.GetState()
		if r.GetStale() {
			state += " (stale: session down, graceful restart)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.GetEdge(), r.GetUplink(), state, ago(r.GetSince(), now), r.GetNeighbor())
	}
	return tw.Flush()
}

// eventUplink is the uplink an event is about: another edge's is written
// edge/uplink.
func eventUplink(e *apiv1.Event) string {
	if e.GetEdge() != "" {
		return e.GetEdge() + "/" + e.GetUplink()
	}
	return dash(e.GetUplink())
}

// renderEvents prints events one a line.
func renderEvents(w io.Writer, evs []*apiv1.Event) error {
	tw := newTab(w)
	fmt.Fprintln(tw, "SEQ\tTIME\tUPLINK\tCHANGE\tREASON\tACTIONS")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s -> %s\t%s\t%s\n", e.GetSeq(), e.GetTime().AsTime().UTC().Format(time.RFC3339), eventUplink(e), e.GetFrom(), e.GetTo(), e.GetReason(), strings.Join(e.GetActions(), "; "))
	}
	return tw.Flush()
}

// eventLine is one followed event (no table: lines arrive one by one).
func eventLine(e *apiv1.Event) string {
	return fmt.Sprintf("%d %s %s %s -> %s: %s [%s]", e.GetSeq(), e.GetTime().AsTime().UTC().Format(time.RFC3339), eventUplink(e), e.GetFrom(), e.GetTo(), e.GetReason(), strings.Join(e.GetActions(), "; "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

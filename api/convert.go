package api

import (
	"slices"
	"time"

	"github.com/multihomed/multihomed/routing"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/health"
)

// ModePI and ModePA are the values of Status.mode.
const (
	ModePI = string(config.ModePI)
	ModePA = string(config.ModePA)
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// probeFigures are the prober's figures and when they were read.
type probeFigures struct {
	snap health.Snapshot
	at   time.Time
}

// statusToProto renders a controller snapshot with the probe figures in
// probes; cfg supplies the uplinks' interfaces and order (nil: the
// decision's order only).
func statusToProto(st *controller.Status, probes probeFigures, cfg *config.Config, now time.Time) *apiv1.Status {
	out := &apiv1.Status{
		At: ts(st.At), Mode: ModePI, Waiting: st.Desired.Waiting,
		FailStatic: st.Desired.FailStatic, Alarm: st.Desired.Alarm,
		InternalDefaultLocalPref: st.Desired.DefaultLocalPref, InsideAdvertise: st.Desired.InsideAdvertise,
		ApplyError: st.ApplyError, ReconcileErrors: st.ReconcileErrors, Passes: st.Passes,
	}
	ifaces := map[string]string{}
	probed := map[string]bool{}
	if cfg != nil {
		for _, u := range cfg.Uplinks {
			ifaces[u.Name] = u.Interface
			probed[u.Name] = u.Health != nil
		}
	}
	for _, d := range st.Desired.Uplinks {
		u := &apiv1.Uplink{
			Name: d.Uplink, Interface: ifaces[d.Uplink], State: string(d.State), Reason: d.Reason,
			Egress: d.Egress, Metric: int32(d.Metric), Weight: int32(d.Weight), InsideLocalPref: d.InsideLocalPref,
			Probes: &apiv1.Probes{Probed: probed[d.Uplink], Verdict: health.VerdictUnknown.String()},
		}
		if hs, ok := probes.snap.Uplink(d.Uplink); ok {
			u.Probes = probesToProto(hs, probes.at)
		}
		for _, s := range st.Sessions {
			if !s.Internal && s.Uplink == d.Uplink {
				u.Sessions = append(u.Sessions, sessionToProto(s, now))
			}
		}
		for _, a := range st.Announced[d.Uplink] {
			u.Announced = append(u.Announced, announcementToProto(a))
		}
		for _, a := range d.Announcements {
			u.Desired = append(u.Desired, announcementToProto(a))
		}
		if o, ok := st.Overrides[d.Uplink]; ok && o.Active(now) {
			u.Override = overrideToProto(o)
		}
		if cfg != nil && cfg.Site.Mode == config.ModePA {
			u.Translation, u.Nat44 = uplinkPA(cfg, st.PA, d.Uplink)
		}
		out.Uplinks = append(out.Uplinks, u)
	}
	if st.Desired.PA != nil || cfg != nil && cfg.Site.Mode == config.ModePA {
		out.Mode = ModePA
	}
	if st.PA != nil {
		out.TranslationError = st.PA.CountersError
		out.Dns = dnsToProto(st.PA)
	}
	for _, s := range st.Sessions {
		if s.Internal {
			out.InternalSessions = append(out.InternalSessions, sessionToProto(s, now))
		}
	}
	out.RemoteUplinks = remoteUplinksToProto(st.Remote, now)
	out.RemoteUsable = int32(st.Desired.RemoteUsable)
	for _, r := range st.Egress {
		er := &apiv1.EgressRoute{Destination: r.Dst.String(), Metric: int32(r.Metric)}
		for _, h := range r.NextHops {
			er.NextHops = append(er.NextHops, &apiv1.NextHop{Gateway: h.Gateway.String(), Device: h.Device, Weight: int32(h.Weight)})
		}
		out.Egress = append(out.Egress, er)
	}
	return out
}

func probesToProto(hs health.UplinkStatus, at time.Time) *apiv1.Probes {
	p := &apiv1.Probes{
		ReadAt: ts(at),
		Probed: true, Verdict: hs.Verdict.String(), Reason: hs.Reason, Since: ts(hs.Since),
		LossPercent: hs.Loss, RttMean: dur(hs.RTTMean), RttP95: dur(hs.RTTP95), Samples: int32(hs.Samples),
		TargetsUp: int32(hs.TargetsUp), TargetsNeeded: int32(hs.TargetsNeeded),
		Bursts: hs.Bursts, BurstProbes: hs.BurstProbes, BurstsSuppressed: hs.BurstsSuppressed,
	}
	for _, t := range hs.Targets {
		p.Targets = append(p.Targets, &apiv1.Target{
			Target: t.Target, State: t.State.String(), Since: ts(t.Since), LossPercent: t.Loss,
			RttMean: dur(t.RTTMean), RttP95: dur(t.RTTP95), Samples: int32(t.Samples), Probes: t.Probes, LastError: t.LastError,
			RttLast: dur(t.RTTLast), MeasuredAt: ts(t.LastProbe),
		})
	}
	return p
}

func sessionToProto(s routing.SessionState, now time.Time) *apiv1.Session {
	out := &apiv1.Session{Neighbor: s.Neighbor.String(), State: s.State, Since: ts(s.Since), LastError: s.LastError, HeldDown: s.HeldDown, Received: s.Received, Accepted: s.Accepted, ImportPhase: s.ImportPhase}
	if s.Established() && !s.Since.IsZero() {
		out.Uptime = dur(now.Sub(s.Since).Truncate(time.Second))
	}
	return out
}

func announcementToProto(a routing.Announcement) *apiv1.Announcement {
	out := &apiv1.Announcement{Prefix: a.Prefix.String(), Prepend: uint32(a.Prepend), GracefulShutdown: a.GracefulShutdown}
	if a.MED != nil {
		m := *a.MED
		out.Med = &m
	}
	for _, c := range a.Communities {
		out.Communities = append(out.Communities, c.String())
	}
	// As bgp's export policy does: the community is added once.
	if a.GracefulShutdown && !slices.Contains(a.Communities, routing.CommunityGracefulShutdown) {
		out.Communities = append(out.Communities, routing.CommunityGracefulShutdown.String())
	}
	for _, c := range a.LargeCommunities {
		out.LargeCommunities = append(out.LargeCommunities, c.String())
	}
	return out
}

func overrideToProto(o controller.Override) *apiv1.Override {
	return &apiv1.Override{
		Drain: o.Drain, ForceDown: o.ForceDown, ExtraPrepend: uint32(o.ExtraPrepend),
		Reason: o.Reason, Who: o.Who, Since: ts(o.Since), Expires: ts(o.Expires),
	}
}

func eventToProto(e controller.Event) *apiv1.Event {
	return &apiv1.Event{
		Seq: e.Seq, Time: ts(e.Time), Uplink: e.Uplink, From: string(e.From), To: string(e.To),
		Reason: e.Reason, Actions: e.Actions, Edge: e.Edge,
	}
}

func remoteUplinksToProto(v routing.SiteView, now time.Time) []*apiv1.RemoteUplink {
	var out []*apiv1.RemoteUplink
	for _, u := range v.Uplinks {
		r := &apiv1.RemoteUplink{Edge: u.Edge.String(), Neighbor: u.Neighbor.String(), Uplink: u.Uplink, State: u.State, Since: ts(u.Since), Stale: u.Stale}
		if !u.Since.IsZero() {
			r.Age = dur(max(now.Sub(u.Since), 0).Truncate(time.Second))
		}
		out = append(out, r)
	}
	return out
}

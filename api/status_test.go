package api

import (
	"context"
	"testing"
	"time"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/health"
)

type fakeHealth struct{ snap health.Snapshot }

func (f fakeHealth) Snapshot() health.Snapshot { return f.snap }

// TestGetStatusLiveProbes: with a HealthReader, GetStatus shows the
// prober's figures as of the call, not those the controller kept from its
// last pass; without one, the pass's figures and their time.
func TestGetStatusLiveProbes(t *testing.T) {
	ctl := newFakeController()
	pass := ctl.Status()
	pass.At = t0.Add(-19 * time.Second)
	ctl.status.Store(pass)
	live := health.Snapshot{Uplinks: []health.UplinkStatus{{
		Name: "isp-b", Verdict: health.VerdictDegraded, Figures: health.Figures{Loss: 37.5, RTTMean: 41 * time.Millisecond, Samples: 40},
		Bursts: 6, BurstProbes: 17, BurstsSuppressed: 2,
		Targets: []health.TargetStatus{{Target: "icmp:2001:db8:53::1", State: health.TargetUp, Figures: health.Figures{Loss: 37.5, RTTMean: 41 * time.Millisecond, Samples: 40, RTTLast: 39 * time.Millisecond, LastProbe: t0.Add(-700 * time.Millisecond)}, Probes: 1234}},
	}}}
	for _, tc := range []struct {
		name     string
		health   HealthReader
		wantLoss float64
		wantAt   time.Time
		targets  int
	}{
		{"live", fakeHealth{live}, 37.5, t0, 1},
		{"last pass", nil, 12, t0.Add(-19 * time.Second), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := NewServer(Options{Controller: ctl, Health: tc.health, Config: newFakeConfig(t), Logger: slogDiscard(), Now: func() time.Time { return t0 }})
			resp, err := svc.GetStatus(context.Background(), &apiv1.GetStatusRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var p *apiv1.Probes
			for _, u := range resp.GetStatus().GetUplinks() {
				if u.GetName() == "isp-b" {
					p = u.GetProbes()
				}
			}
			if p == nil {
				t.Fatal("no isp-b in status")
			}
			if p.GetLossPercent() != tc.wantLoss || !p.GetReadAt().AsTime().Equal(tc.wantAt) || len(p.GetTargets()) != tc.targets {
				t.Errorf("probes: loss %v read_at %v targets %d; want %v, %v, %d", p.GetLossPercent(), p.GetReadAt().AsTime(), len(p.GetTargets()), tc.wantLoss, tc.wantAt, tc.targets)
			}
			if tc.targets > 0 && (p.GetBursts() != 6 || p.GetBurstProbes() != 17 || p.GetBurstsSuppressed() != 2) {
				t.Errorf("bursts %d, burst probes %d, suppressed %d; want the live 6, 17, 2", p.GetBursts(), p.GetBurstProbes(), p.GetBurstsSuppressed())
			}
			if tc.targets > 0 {
				tg := p.GetTargets()[0]
				if tg.GetProbes() != 1234 || tg.GetRttLast().AsDuration() != 39*time.Millisecond || !tg.GetMeasuredAt().AsTime().Equal(t0.Add(-700*time.Millisecond)) {
					t.Errorf("target: %v; want the live target's figures (1234 probes, last rtt 39ms, measured 700ms before the call)", tg)
				}
			}
		})
	}
}

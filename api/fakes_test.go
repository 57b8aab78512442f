package api

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/health"
)

// t0 is the fakes' clock.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

const testConfig = `
profile: lab
node: {router_id: 192.0.2.1, asn: 64500}
site: {prefixes: [2001:db8:face::/48]}
uplinks:
  - name: isp-a
    interface: eth-a
    bgp: {peer_asn: 64501, neighbor: "2001:db8:1000:1::1", password: s3cret-md5}
  - name: isp-b
    interface: eth-b
    bgp: {peer_asn: 64502, neighbor: "2001:db8:2000:1::1", prepend: 1}
`

// fakeController records commands and serves a status and an event
// history like controller.Loop's: bounded, signalled without blocking.
type fakeController struct {
	status atomic.Pointer[controller.Status]

	mu sync.Mutex
	// The fields below are guarded by mu.
	uplinks   []string
	overrides map[string]controller.Override
	calls     []string
	events    []controller.Event
	// eventsCalls counts Events calls (what a watcher costs the history).
	eventsCalls int
	next        uint64
	max         int
	subs        map[chan struct{}]struct{}
}

func newFakeController() *fakeController {
	f := &fakeController{uplinks: []string{"isp-a", "isp-b"}, overrides: map[string]controller.Override{}, next: 1, max: 100000, subs: map[chan struct{}]struct{}{}}
	med := uint32(10)
	f.status.Store(&controller.Status{
		At: t0,
		Desired: controller.Desired{
			Uplinks: []controller.Decision{
				{Uplink: "isp-a", State: controller.StateUp, Reason: "probes up", Egress: true, Metric: 100, Weight: 1,
					Announcements: []routing.Announcement{{Prefix: netip.MustParsePrefix("2001:db8:face::/48"), MED: &med}}},
				{Uplink: "isp-b", State: controller.StateDegraded, Reason: "loss 12% over 10%", Egress: true, Metric: 1110, Weight: 1,
					Announcements: []routing.Announcement{{Prefix: netip.MustParsePrefix("2001:db8:face::/48"), Prepend: 4, Communities: []routing.Community{64502<<16 | 200}}}},
			},
			DefaultLocalPref: 200,
		},
		Announced: map[string][]routing.Announcement{
			"isp-a": {{Prefix: netip.MustParsePrefix("2001:db8:face::/48"), MED: &med}},
			"isp-b": {{Prefix: netip.MustParsePrefix("2001:db8:face::/48"), Prepend: 4, Communities: []routing.Community{64502<<16 | 200}}},
		},
		Egress: []routing.EgressRoute{{Dst: netip.MustParsePrefix("::/0"), Metric: 100, NextHops: []routing.EgressNextHop{{Gateway: netip.MustParseAddr("2001:db8:1000:1::1"), Device: "eth-a", Weight: 1}}}},
		Sessions: []routing.SessionState{
			{Uplink: "isp-a", Neighbor: netip.MustParseAddr("2001:db8:1000:1::1"), State: "established", Since: t0.Add(-90 * time.Minute)},
			{Uplink: "isp-b", Neighbor: netip.MustParseAddr("2001:db8:2000:1::1"), State: "established", Since: t0.Add(-30 * time.Second), SoftResetsOut: 3, Received: 1000, ImportPhase: routing.ImportCounting},
			{Uplink: "isp-b", Neighbor: netip.MustParseAddr("198.18.2.1"), State: "idle", Since: t0.Add(-2 * time.Minute), HeldDown: "max-prefix exceeded: more than 100; retry at 2026-11-27T15:04:05Z"},
		},
		Health: health.Snapshot{Uplinks: []health.UplinkStatus{
			{Name: "isp-a", Verdict: health.VerdictUp, Since: t0.Add(-time.Hour), Reason: "2/2 targets up", TargetsUp: 2, TargetsNeeded: 1, Figures: health.Figures{RTTMean: 12 * time.Millisecond, RTTP95: 15 * time.Millisecond, Samples: 20}},
			{Name: "isp-b", Verdict: health.VerdictDegraded, Since: t0.Add(-time.Minute), Reason: "loss 12% over 10%", TargetsUp: 2, TargetsNeeded: 1, Figures: health.Figures{Loss: 12, RTTMean: 30 * time.Millisecond, RTTP95: 45 * time.Millisecond, Samples: 20}},
		}},
		Overrides: map[string]controller.Override{},
		Passes:    7,
	})
	return f
}

func (f *fakeController) Status() *controller.Status { return f.status.Load() }

func (f *fakeController) Events(after uint64, limit int) []controller.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eventsCalls++
	var out []controller.Event
	for _, e := range f.events {
		if e.Seq > after {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out
}

func (f *fakeController) EventBounds() (oldest, newest uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return 0, 0
	}
	return f.events[0].Seq, f.events[len(f.events)-1].Seq
}

func (f *fakeController) eventsCallCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.eventsCalls
}

func (f *fakeController) SubscribeEvents() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[c] = struct{}{}
	f.mu.Unlock()
	return c, func() {
		f.mu.Lock()
		delete(f.subs, c)
		f.mu.Unlock()
	}
}

func (f *fakeController) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// addEvent appends like controller's history: never blocks.
func (f *fakeController) addEvent(uplink string, to controller.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, controller.Event{Seq: f.next, Time: t0.Add(time.Duration(f.next) * time.Second), Uplink: uplink, From: controller.StateUp, To: to, Reason: "test", Actions: []string{"withdraw"}})
	f.next++
	if len(f.events) > f.max {
		f.events = f.events[len(f.events)-f.max:]
	}
	for c := range f.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (f *fakeController) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeController) set(uplink string, o *controller.Override, call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.uplinks, uplink) {
		return fmt.Errorf("controller: %q: %w", uplink, controller.ErrUnknownUplink)
	}
	f.calls = append(f.calls, call)
	if o == nil {
		delete(f.overrides, uplink)
	} else {
		o.Since = t0
		f.overrides[uplink] = *o
	}
	st := *f.status.Load()
	st.Overrides = maps.Clone(f.overrides)
	f.status.Store(&st)
	return nil
}

func exp(d time.Duration) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return t0.Add(d)
}

func (f *fakeController) Drain(_ context.Context, uplink, reason, who string, d time.Duration) error {
	return f.set(uplink, &controller.Override{Drain: true, Reason: reason, Who: who, Expires: exp(d)}, fmt.Sprintf("drain %s %q by %s for %s", uplink, reason, who, d))
}

func (f *fakeController) ForceDown(_ context.Context, uplink, reason, who string, d time.Duration) error {
	return f.set(uplink, &controller.Override{ForceDown: true, Reason: reason, Who: who, Expires: exp(d)}, fmt.Sprintf("force-down %s %q by %s for %s", uplink, reason, who, d))
}

func (f *fakeController) Prepend(_ context.Context, uplink string, n uint8, reason, who string, d time.Duration) error {
	return f.set(uplink, &controller.Override{ExtraPrepend: n, Reason: reason, Who: who, Expires: exp(d)}, fmt.Sprintf("prepend %s %d %q by %s for %s", uplink, n, reason, who, d))
}

func (f *fakeController) ClearOverride(_ context.Context, uplink string) error {
	return f.set(uplink, nil, "clear "+uplink)
}

// Undrain mirrors controller.Loop.Undrain: another kind of override is
// refused and kept.
func (f *fakeController) Undrain(ctx context.Context, uplink string) (bool, error) {
	o, ok := f.status.Load().Overrides[uplink]
	if ok && !o.Drain {
		return false, fmt.Errorf("fake: %s: %w", uplink, controller.ErrNotDrained)
	}
	if !ok {
		return false, nil
	}
	return true, f.set(uplink, nil, "clear "+uplink)
}

func (f *fakeController) ResetUplink(_ context.Context, uplink, who string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.uplinks, uplink) {
		return fmt.Errorf("controller: %q: %w", uplink, controller.ErrUnknownUplink)
	}
	f.calls = append(f.calls, fmt.Sprintf("reset %s by %s", uplink, who))
	return nil
}

func (f *fakeController) Decommission(ctx context.Context, who string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "decommission by "+who)
	return ctx.Err()
}

// fakeConfig serves a parsed configuration; Reload parses fileText.
type fakeConfig struct {
	mu sync.Mutex
	// The fields below are guarded by mu.
	cfg      *config.Config
	fileText string
	reloads  int
}

func newFakeConfig(t testing.TB) *fakeConfig {
	t.Helper()
	cfg, err := config.Parse("test", []byte(testConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeConfig{cfg: cfg, fileText: testConfig}
}

func (f *fakeConfig) Current() (*config.Config, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg, "/etc/multihomed/multihomed.yaml"
}

func (f *fakeConfig) Validate(text []byte) ([]config.Problem, error) {
	cfg, err := config.Parse("request", text, nil)
	if err != nil {
		return nil, err
	}
	return config.Advice(cfg), nil
}

func (f *fakeConfig) Reload(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, err := config.Parse("/etc/multihomed/multihomed.yaml", []byte(f.fileText), nil)
	if err != nil {
		return nil, err
	}
	f.cfg = cfg
	f.reloads++
	return nil, nil
}

func (f *fakeConfig) setFile(text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fileText = text
}

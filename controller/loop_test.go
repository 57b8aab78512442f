package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"

	"go.uber.org/goleak"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/internal/testenv"
)

// fakeSpeaker records what the loop asks of the speaker and fails the
// test when an invariant of the real speaker's contract breaks.
type fakeSpeaker struct {
	t   *testing.T
	cfg *config.Config

	mu       sync.Mutex
	state    map[string][]routing.Announcement
	lp       uint32
	inside   map[string]uint32
	changes  int // calls that changed something
	calls    int
	failNext int
	sessions []routing.SessionState
	resets   []string
	// reconfigureErr is what Reconfigure returns.
	reconfigureErr error
	changed        chan struct{}
	// first is the first SetAnnouncements call's argument.
	first map[string][]routing.Announcement
	// phases lists, per change, "withdrawn", "gshut" (every uplink
	// announces with GRACEFUL_SHUTDOWN) or "announced".
	phases []string
}

func newFakeSpeaker(t *testing.T, cfg *config.Config) *fakeSpeaker {
	f := &fakeSpeaker{t: t, cfg: cfg, changed: make(chan struct{}, 1), state: map[string][]routing.Announcement{}}
	for _, u := range cfg.Uplinks {
		f.sessions = append(f.sessions, routing.SessionState{Uplink: u.Name, State: "established"})
	}
	return f
}

func (f *fakeSpeaker) SetAnnouncements(_ context.Context, anns map[string][]routing.Announcement) (map[string][]routing.Announcement, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == 1 {
		f.first = anns
	}
	for uplink, list := range anns {
		if !slices.ContainsFunc(f.cfg.Uplinks, func(u config.Uplink) bool { return u.Name == uplink }) {
			f.t.Errorf("announcing to unknown uplink %q", uplink)
		}
		for _, a := range list {
			if !slices.Contains(f.cfg.Site.Prefixes, a.Prefix) || a.Prepend > config.MaxPrepend {
				f.t.Errorf("bad announcement to %s: %+v", uplink, a)
			}
		}
	}
	if f.failNext > 0 {
		f.failNext--
		return f.state, errors.New("injected failure")
	}
	if !equalAnns(f.state, anns) {
		f.changes++
		phase := "announced"
		if len(anns) == 0 {
			phase = "withdrawn"
		} else if !slices.ContainsFunc(slices.Collect(maps.Values(anns)), func(l []routing.Announcement) bool {
			return slices.ContainsFunc(l, func(a routing.Announcement) bool { return !a.GracefulShutdown })
		}) {
			phase = "gshut"
		}
		f.phases = append(f.phases, phase)
	}
	f.state = anns
	return f.state, nil
}

func equalAnns(a, b map[string][]routing.Announcement) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.EqualFunc(v, b[k], routing.Announcement.Equal) {
			return false
		}
	}
	return true
}

func (f *fakeSpeaker) SetInternalDefault(_ context.Context, lp uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lp = lp
	return nil
}

func (f *fakeSpeaker) SetInsideLocalPrefs(_ context.Context, prefs map[string]uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for u, lp := range prefs {
		if _, ok := uplinkConfig(f.cfg, u); !ok || lp == 0 {
			f.t.Errorf("SetInsideLocalPrefs(%v): %s is not a configured uplink or has 0 (leave it out)", prefs, u)
		}
	}
	f.inside = maps.Clone(prefs)
	return nil
}

func (f *fakeSpeaker) Reconfigure(_ context.Context, cfg *config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reconfigureErr
}

func (f *fakeSpeaker) ResetUplink(_ context.Context, uplink, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets = append(f.resets, uplink)
	return nil
}

// CloseUplink is recorded as "close:UPLINK" beside ResetUplink's "UPLINK".
func (f *fakeSpeaker) CloseUplink(_ context.Context, uplink, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets = append(f.resets, "close:"+uplink)
	return nil
}

func (f *fakeSpeaker) resetList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.resets)
}

func (f *fakeSpeaker) Sessions() []routing.SessionState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions)
}

func (f *fakeSpeaker) Changed() <-chan struct{} { return f.changed }

func (f *fakeSpeaker) Announced() map[string][]routing.Announcement {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.state)
}

func (f *fakeSpeaker) setSession(uplink string, up bool) {
	f.mu.Lock()
	for i := range f.sessions {
		if f.sessions[i].Uplink == uplink {
			f.sessions[i].State = map[bool]string{true: "established", false: "active"}[up]
		}
	}
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeSpeaker) snapshot() (map[string][]routing.Announcement, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.changes, f.calls
}

type fakeEgress struct {
	mu      sync.Mutex
	paths   []routing.EgressPath
	sets    int
	targets []string // Retarget calls, as "table/protocol"
	retired []string // Retire calls, as "table/protocol"
	// stateErr, when set, is what State fails with.
	stateErr error
}

// Invalidate does nothing: fakeEgress keeps no applied state to forget.
func (f *fakeEgress) Invalidate() {}

func (f *fakeEgress) State() ([]routing.EgressRoute, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stateErr != nil {
		return nil, f.stateErr
	}
	var out []routing.EgressRoute
	for _, p := range f.paths {
		out = append(out, routing.EgressRoute{Metric: p.Metric, NextHops: []routing.EgressNextHop{{Device: p.Device}}})
	}
	return out, nil
}

func (f *fakeEgress) Retire(table, protocol int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retired = append(f.retired, fmt.Sprintf("%d/%d", table, protocol))
	return nil
}

func (f *fakeEgress) Retarget(table, protocol int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = append(f.targets, fmt.Sprintf("%d/%d", table, protocol))
	return nil
}

func (f *fakeEgress) Set(_ context.Context, paths []routing.EgressPath, ecmp bool) ([]routing.EgressRoute, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	f.paths = slices.Clone(paths)
	return nil, nil
}

func (f *fakeEgress) uplinks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.paths {
		out = append(out, fmt.Sprintf("%s/%d", p.Uplink, p.Metric))
	}
	return out
}

type fakeHealth struct {
	mu      sync.Mutex
	snap    health.Snapshot
	changed chan struct{}
}

func newFakeHealth(cfg *config.Config) *fakeHealth {
	h := &fakeHealth{changed: make(chan struct{}, 1)}
	for _, u := range cfg.Uplinks {
		h.snap.Uplinks = append(h.snap.Uplinks, health.UplinkStatus{Name: u.Name, Verdict: health.VerdictUp, Reason: "all targets up"})
	}
	return h
}

func (h *fakeHealth) Snapshot() health.Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.snap
	s.Uplinks = slices.Clone(s.Uplinks)
	return s
}

func (h *fakeHealth) Changed() <-chan struct{} { return h.changed }

func (h *fakeHealth) set(uplink string, v health.Verdict) {
	h.mu.Lock()
	for i := range h.snap.Uplinks {
		if h.snap.Uplinks[i].Name == uplink {
			h.snap.Uplinks[i].Verdict = v
			h.snap.Uplinks[i].Reason = "set by test: " + v.String()
		}
	}
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func loopConfig(t *testing.T) *config.Config {
	cfg := testConfig(t)
	cfg.Controller.StartupWait = 0
	cfg.Controller.Resync = 50 * time.Millisecond
	cfg.Controller.StateDir = t.TempDir()
	cfg.Controller.HoldDown = 0
	return cfg
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, what, 5*time.Second, cond)
}

type running struct {
	loop   *Loop
	sp     *fakeSpeaker
	eg     *fakeEgress
	h      *fakeHealth
	cancel func()
}

func startLoop(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	r := &running{sp: newFakeSpeaker(t, cfg), eg: &fakeEgress{}, h: newFakeHealth(cfg)}
	r.loop = New(cfg, Deps{Speaker: r.sp, Egress: r.eg, Health: r.h})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	var once sync.Once
	r.cancel = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(r.cancel)
	return r
}

func TestLoopConvergesAndIsIdempotent(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	waitFor(t, "all three uplinks announced", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		return len(st) == 3, fmt.Sprint(st)
	})
	_, changes, calls := r.sp.snapshot()
	// Several resync passes later nothing has changed again.
	waitFor(t, "more passes", func() (bool, string) {
		_, _, c := r.sp.snapshot()
		return c >= calls+3, fmt.Sprint(c)
	})
	if _, ch, _ := r.sp.snapshot(); ch != changes {
		t.Fatalf("reconciling the same decision changed the speaker %d more times", ch-changes)
	}
	if got := r.eg.uplinks(); !slices.Equal(got, []string{"isp-a/100", "isp-b/110", "isp-c/120"}) {
		t.Fatalf("egress = %v", got)
	}
	r.cancel()
}

func TestLoopFollowsHealthAndSessions(t *testing.T) {
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	waitFor(t, "announced", func() (bool, string) { st, _, _ := r.sp.snapshot(); return len(st) == 3, "" })
	r.h.set("isp-a", health.VerdictDown)
	waitFor(t, "isp-a withdrawn and out of egress", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		_, announced := st["isp-a"]
		return !announced && !slices.Contains(r.eg.uplinks(), "isp-a/100"), fmt.Sprint(r.eg.uplinks())
	})
	r.sp.setSession("isp-c", false)
	waitFor(t, "isp-c withdrawn on session loss", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		_, announced := st["isp-c"]
		return !announced, fmt.Sprint(st)
	})
	// The history holds both changes (the pass records them after it
	// applied, so they may follow the speaker's state by a moment).
	waitFor(t, "both changes in the history", func() (bool, string) {
		var got []string
		for _, e := range r.loop.Events(0, 0) {
			got = append(got, fmt.Sprintf("%s:%s->%s", e.Uplink, e.From, e.To))
		}
		return slices.Contains(got, "isp-a:up->down") && slices.Contains(got, "isp-c:up->down"), fmt.Sprint(got)
	})
	// Carrier loss reported by the link watcher.
	r.loop.SetCarrier("eth-b", false)
	waitFor(t, "isp-b down on carrier loss", func() (bool, string) {
		d, _ := r.loop.Status().Desired.Decision("isp-b")
		return d.State == StateDown && strings.Contains(d.Reason, "carrier"), d.Reason
	})
	// Its sessions were reset once, not on every pass.
	p0 := r.loop.Status().Passes
	waitFor(t, "three more passes", func() (bool, string) { return r.loop.Status().Passes >= p0+3, "" })
	// Closed, not reset: a max-prefix hold-down stays (CloseUplink).
	if got := r.sp.resetList(); !slices.Equal(got, []string{"close:isp-b"}) {
		t.Errorf("sessions reset: %v; want isp-b closed once", got)
	}
}

func TestLoopRetriesApplierErrors(t *testing.T) {
	cfg := loopConfig(t)
	r := &running{sp: newFakeSpeaker(t, cfg), eg: &fakeEgress{}, h: newFakeHealth(cfg)}
	r.sp.failNext = 3
	r.loop = New(cfg, Deps{Speaker: r.sp, Egress: r.eg, Health: r.h})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.loop.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "converged after injected failures", func() (bool, string) {
		st := r.loop.Status()
		s, _, _ := r.sp.snapshot()
		return len(s) == 3 && st.ApplyError == "" && st.ReconcileErrors >= 3, fmt.Sprintf("errors=%d last=%q", st.ReconcileErrors, st.ApplyError)
	})
}

func TestOverridesPersistAcrossRestart(t *testing.T) {
	cfg := loopConfig(t)
	cfg.Controller.DrainGrace = time.Hour
	r := startLoop(t, cfg)
	ctx := context.Background()
	if err := r.loop.Drain(ctx, "isp-a", "fibre work", "alice", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := r.loop.Drain(ctx, "isp-x", "", "", 0); !errors.Is(err, ErrUnknownUplink) {
		t.Fatalf("drain of unknown uplink: %v", err)
	}
	waitFor(t, "isp-a drained with graceful shutdown", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		a := st["isp-a"]
		return len(a) > 0 && a[0].GracefulShutdown, fmt.Sprint(a)
	})
	r.cancel()
	if _, err := os.Stat(filepath.Join(cfg.Controller.StateDir, "overrides.json")); err != nil {
		t.Fatal(err)
	}
	// A new loop (a restarted daemon) picks the drain up again.
	r2 := startLoop(t, cfg)
	waitFor(t, "drain restored after restart", func() (bool, string) {
		d, _ := r2.loop.Status().Desired.Decision("isp-a")
		return d.State == StateDrained && strings.Contains(d.Reason, "fibre work"), d.Reason
	})
	if err := r2.loop.ClearOverride(ctx, "isp-a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "undrained", func() (bool, string) {
		st, _, _ := r2.sp.snapshot()
		a := st["isp-a"]
		return len(a) > 0 && !a[0].GracefulShutdown, fmt.Sprint(a)
	})
}

func TestCorruptOverridesFileNamed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "overrides.json"), []byte("{not json"), 0o600)
	_, err := loadOverrides(dir, time.Now())
	if err == nil || !strings.Contains(err.Error(), "overrides.json") {
		t.Fatalf("err = %v; want the file named", err)
	}
}

func TestUndrainLiftsOnlyDrains(t *testing.T) {
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	ctx := context.Background()
	if was, err := r.loop.Undrain(ctx, "isp-a"); err != nil || was {
		t.Fatalf("undrain without override = %v, %v; want false, nil", was, err)
	}
	if err := r.loop.Drain(ctx, "isp-a", "work", "noc", 0); err != nil {
		t.Fatal(err)
	}
	if was, err := r.loop.Undrain(ctx, "isp-a"); err != nil || !was {
		t.Fatalf("undrain of a drain = %v, %v; want true, nil", was, err)
	}
	if err := r.loop.ForceDown(ctx, "isp-b", "outage", "noc", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.loop.Undrain(ctx, "isp-b"); !errors.Is(err, ErrNotDrained) {
		t.Fatalf("undrain of a force-down: %v; want ErrNotDrained", err)
	}
	waitFor(t, "force-down kept", func() (bool, string) {
		o, ok := r.loop.Status().Overrides["isp-b"]
		_, stillA := r.loop.Status().Overrides["isp-a"]
		return ok && o.ForceDown && !stillA, fmt.Sprint(r.loop.Status().Overrides)
	})
	if _, err := r.loop.Undrain(ctx, "isp-x"); !errors.Is(err, ErrUnknownUplink) {
		t.Fatalf("undrain of an unknown uplink: %v", err)
	}
}

// TestReloadRetargetsEgress: a reload that changes egress.table or
// egress.protocol moves the routes (Retarget), one that does not, does not.
func TestReloadRetargetsEgress(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	defer r.cancel() // before goleak looks
	ctx := context.Background()
	same := *cfg
	if _, err := r.loop.Reload(ctx, &same); err != nil {
		t.Fatal(err)
	}
	moved := *cfg
	moved.Egress.Table, moved.Egress.Protocol = 100, 79
	if _, err := r.loop.Reload(ctx, &moved); err != nil {
		t.Fatal(err)
	}
	r.eg.mu.Lock()
	got := slices.Clone(r.eg.targets)
	r.eg.mu.Unlock()
	if !slices.Equal(got, []string{"100/79"}) {
		t.Fatalf("Retarget calls %v, want [100/79]", got)
	}
}

// TestEgressTargetSurvivesRestart: the egress table and protocol in force
// are kept in the state directory; a loop started with other ones retires
// the previous run's (its routes go once the new ones are in place), one
// started with the same ones retires nothing.
func TestEgressTargetSurvivesRestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := loopConfig(t)
	cfg.Controller.StateDir = t.TempDir()
	run := func(c *config.Config) []string {
		t.Helper()
		r := startLoop(t, c)
		waitFor(t, "a pass", func() (bool, string) {
			r.eg.mu.Lock()
			defer r.eg.mu.Unlock()
			return r.eg.sets > 0, ""
		})
		r.cancel()
		r.eg.mu.Lock()
		defer r.eg.mu.Unlock()
		return slices.Clone(r.eg.retired)
	}
	if got := run(cfg); len(got) != 0 {
		t.Fatalf("first start retired %v", got)
	}
	if got := run(cfg); len(got) != 0 {
		t.Fatalf("restart with the same egress retired %v", got)
	}
	moved := *cfg
	moved.Egress.Protocol = 79
	if got := run(&moved); !slices.Equal(got, []string{fmt.Sprintf("%d/78", cfg.Egress.Table)}) {
		t.Fatalf("restart with protocol 79 retired %v, want [%d/78]", got, cfg.Egress.Table)
	}
	if got := run(&moved); len(got) != 0 {
		t.Fatalf("second restart with protocol 79 retired %v", got)
	}
}

// TestStatusShowsEgressReadError: an egress read-back failure reaches
// Status instead of vanishing, and clears once reads work again.
func TestStatusShowsEgressReadError(t *testing.T) {
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	r.eg.mu.Lock()
	r.eg.stateErr = errors.New("netlink dump refused")
	r.eg.mu.Unlock()
	waitFor(t, "the read error in status", func() (bool, string) {
		st := r.loop.Status()
		return strings.Contains(st.EgressError, "netlink dump refused") && len(st.Egress) == 0, st.EgressError
	})
	r.eg.mu.Lock()
	r.eg.stateErr = nil
	r.eg.mu.Unlock()
	waitFor(t, "egress read back again", func() (bool, string) {
		st := r.loop.Status()
		return st.EgressError == "" && len(st.Egress) == 3 && len(st.Announced) == 3, fmt.Sprint(st.Egress)
	})
}

// TestCheckReload: node.* and bgp.listen_port refuse a reload, api.*,
// metrics.* and debug.* warn, anything else passes; the loop enforces the same rule.
func TestCheckReload(t *testing.T) {
	cfg := loopConfig(t)
	tests := []struct {
		name     string
		mutate   func(c *config.Config)
		refused  bool
		warnings int
	}{
		{"unchanged", func(c *config.Config) {}, false, 0},
		{"asn", func(c *config.Config) { c.Node.ASN++ }, true, 0},
		{"listen port", func(c *config.Config) { c.BGP.ListenPort = 1179 }, true, 0},
		{"api socket", func(c *config.Config) { c.API.Socket = "/run/other.sock" }, false, 1},
		{"pprof", func(c *config.Config) { c.Debug.PprofListen = netip.MustParseAddrPort("127.0.0.1:6060") }, false, 1},
		{"uplink weight", func(c *config.Config) { c.Uplinks[0].Weight = 7 }, false, 0},
	}
	r := startLoop(t, cfg)
	for _, tt := range tests {
		next := *cfg
		next.Uplinks = slices.Clone(cfg.Uplinks)
		tt.mutate(&next)
		w, err := CheckReload(cfg, &next)
		if tt.refused != errors.Is(err, ErrReloadRefused) || len(w) != tt.warnings {
			t.Errorf("%s: warnings %v, err %v; want refused %v, %d warnings", tt.name, w, err, tt.refused, tt.warnings)
		}
		if tt.refused {
			if _, err := r.loop.Reload(context.Background(), &next); !errors.Is(err, ErrReloadRefused) {
				t.Errorf("%s: Loop.Reload = %v; want ErrReloadRefused", tt.name, err)
			}
		}
	}
}

// savedOverrides reads the overrides file as the next start would.
func savedOverrides(t *testing.T, dir string) map[string]Override {
	t.Helper()
	m, err := loadOverrides(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestOverrideOfRemovedUplinkStaysGone: force-down an uplink, reload
// without it, reload with it again, restart: it is not forced down. The
// reload without it once dropped the override in memory only, and the
// restart read it back from the file.
func TestOverrideOfRemovedUplinkStaysGone(t *testing.T) {
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	ctx := context.Background()
	if err := r.loop.ForceDown(ctx, "isp-c", "outage", "noc", 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := savedOverrides(t, cfg.Controller.StateDir)["isp-c"]; !ok {
		t.Fatal("force-down not saved")
	}
	without := *cfg
	without.Uplinks = slices.Clone(cfg.Uplinks[:2])
	if _, err := r.loop.Reload(ctx, &without); err != nil {
		t.Fatal(err)
	}
	// Reload returns after the command ran: the file already follows.
	if m := savedOverrides(t, cfg.Controller.StateDir); len(m) != 0 {
		t.Fatalf("overrides file after the reload without isp-c: %v; want empty", m)
	}
	with := *cfg
	if _, err := r.loop.Reload(ctx, &with); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "isp-c back and up", func() (bool, string) {
		d, _ := r.loop.Status().Desired.Decision("isp-c")
		return d.State == StateUp, string(d.State)
	})
	r.cancel()
	r2 := startLoop(t, cfg)
	waitFor(t, "a pass after restart", func() (bool, string) { return r2.loop.Status().Passes > 0, "" })
	if d, _ := r2.loop.Status().Desired.Decision("isp-c"); d.State == StateForcedDown {
		t.Fatalf("isp-c forced down again after restart: %s", d.Reason)
	}
}

// TestStartDropsOverridesOfUnknownUplinks: an override saved for an uplink
// the configuration does not have is dropped at start, in the file too;
// the others stay.
func TestStartDropsOverridesOfUnknownUplinks(t *testing.T) {
	cfg := loopConfig(t)
	if err := saveOverrides(cfg.Controller.StateDir, map[string]Override{
		"isp-gone": {ForceDown: true, Reason: "old"},
		"isp-a":    {Drain: true, Reason: "work"},
	}); err != nil {
		t.Fatal(err)
	}
	r := startLoop(t, cfg)
	waitFor(t, "a pass", func() (bool, string) { return r.loop.Status().Passes > 0, "" })
	if got := slices.Sorted(maps.Keys(r.loop.Status().Overrides)); !slices.Equal(got, []string{"isp-a"}) {
		t.Fatalf("overrides in force %v; want [isp-a]", got)
	}
	if got := slices.Sorted(maps.Keys(savedOverrides(t, cfg.Controller.StateDir))); !slices.Equal(got, []string{"isp-a"}) {
		t.Fatalf("overrides file %v; want [isp-a]", got)
	}
}

// restartConfig is loopConfig with a long startup wait, for restarts whose
// probes have no verdict yet.
func restartConfig(t *testing.T, dir string) *config.Config {
	cfg := loopConfig(t)
	cfg.Controller.StateDir = dir
	cfg.Controller.StartupWait = time.Hour
	return cfg
}

// startWithoutVerdicts starts a loop whose probes have no verdict yet.
func startWithoutVerdicts(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	r := &running{sp: newFakeSpeaker(t, cfg), eg: &fakeEgress{}, h: newFakeHealth(cfg)}
	for _, u := range cfg.Uplinks {
		r.h.set(u.Name, health.VerdictUnknown)
	}
	r.loop = New(cfg, Deps{Speaker: r.sp, Egress: r.eg, Health: r.h})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	var once sync.Once
	r.cancel = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(r.cancel)
	return r
}

// runOnce runs a loop on cfg until it has applied and saved a settled
// decision with isp-b degraded, then stops it.
func runOnce(t *testing.T, cfg *config.Config) {
	t.Helper()
	first := *cfg
	first.Controller.StartupWait = 0
	r := startLoop(t, &first)
	r.h.set("isp-b", health.VerdictDegraded)
	path := filepath.Join(cfg.Controller.StateDir, decisionFile)
	waitFor(t, "the decision saved with isp-b degraded", func() (bool, string) {
		data, err := os.ReadFile(path)
		return err == nil && strings.Contains(string(data), `"egress_tier": 1`), string(data)
	})
	r.cancel()
}

// TestRestartAppliesSavedDecisionBeforeVerdicts: a restarted loop whose
// probes have no verdict yet announces what the previous run applied on
// its first pass (the speaker's first SetAnnouncements), with the egress
// tiers it had; the first verdicts then replace it.
func TestRestartAppliesSavedDecisionBeforeVerdicts(t *testing.T) {
	dir := t.TempDir()
	cfg := restartConfig(t, dir)
	runOnce(t, cfg)

	r := startWithoutVerdicts(t, cfg)
	waitFor(t, "a first SetAnnouncements", func() (bool, string) { _, _, calls := r.sp.snapshot(); return calls > 0, "" })
	r.sp.mu.Lock()
	first := r.sp.first
	r.sp.mu.Unlock()
	if len(first) != 3 || len(first["isp-b"]) != 2 || first["isp-b"][0].Prepend != 1+3 {
		t.Fatalf("first announcements %v; want all three uplinks, isp-b with its degraded prepend 4", first)
	}
	st := r.loop.Status()
	if !st.Desired.Waiting || len(st.Desired.Restoring) != 3 {
		t.Fatalf("status: waiting %v restoring %v; want waiting with all three restored", st.Desired.Waiting, st.Desired.Restoring)
	}
	if got := r.eg.uplinks(); !slices.Equal(got, []string{"isp-a/100", "isp-b/1110", "isp-c/120"}) {
		t.Fatalf("egress during the startup wait: %v", got)
	}
	// The verdicts arrive: this run's own decision takes over.
	for _, u := range cfg.Uplinks {
		r.h.set(u.Name, health.VerdictUp)
	}
	waitFor(t, "isp-b back to its base prepend", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		b := st["isp-b"]
		return len(b) > 0 && b[0].Prepend == 1 && len(r.loop.Status().Desired.Restoring) == 0, fmt.Sprint(b)
	})
}

// TestRestartNeverAnnouncesWhatConfigRemoved: the saved decision names an
// uplink and a prefix the new configuration removed; the restarted loop
// never announces them (the fake speaker fails the test on any
// announcement outside its configuration) and restores the rest.
func TestRestartNeverAnnouncesWhatConfigRemoved(t *testing.T) {
	dir := t.TempDir()
	cfg := restartConfig(t, dir)
	runOnce(t, cfg)

	smaller := restartConfig(t, dir)
	smaller.Uplinks = slices.Clone(smaller.Uplinks[:2])
	smaller.Site.Prefixes = smaller.Site.Prefixes[:1]
	r := startWithoutVerdicts(t, smaller)
	waitFor(t, "a first SetAnnouncements", func() (bool, string) { _, _, calls := r.sp.snapshot(); return calls > 0, "" })
	r.sp.mu.Lock()
	first := r.sp.first
	r.sp.mu.Unlock()
	if len(first) != 2 || len(first["isp-a"]) != 1 || first["isp-a"][0].Prefix != smaller.Site.Prefixes[0] {
		t.Fatalf("first announcements %v; want isp-a and isp-b with %v only", first, smaller.Site.Prefixes)
	}
	// A reload during the wait that removes the last prefix too: the
	// restored decision follows it.
	none := *smaller
	none.Uplinks = slices.Clone(smaller.Uplinks[:1])
	if _, err := r.loop.Reload(context.Background(), &none); err != nil {
		t.Fatal(err)
	}
	// Every pass after Reload returned runs on the new configuration.
	r.sp.mu.Lock()
	r.sp.cfg = &none
	r.sp.mu.Unlock()
	waitFor(t, "isp-b no longer announced", func() (bool, string) {
		st, _, _ := r.sp.snapshot()
		_, b := st["isp-b"]
		return !b, fmt.Sprint(st)
	})
}

// TestCorruptSavedDecisionFallsBack: a corrupt decision file is not used:
// the restarted loop waits for the verdicts, announcing nothing, as on a
// first start.
func TestCorruptSavedDecisionFallsBack(t *testing.T) {
	dir := t.TempDir()
	cfg := restartConfig(t, dir)
	if err := os.WriteFile(filepath.Join(dir, decisionFile), []byte(`{"uplinks": {"isp-a": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadDecision(dir, cfg); err == nil || !strings.Contains(err.Error(), decisionFile) {
		t.Fatalf("loadDecision of a corrupt file: %v; want an error naming it", err)
	}
	r := startWithoutVerdicts(t, cfg)
	waitFor(t, "three passes", func() (bool, string) { return r.loop.Status().Passes >= 3, "" })
	st := r.loop.Status()
	if _, _, calls := r.sp.snapshot(); calls != 0 || !st.Desired.Waiting || len(st.Desired.Restoring) != 0 {
		t.Fatalf("corrupt file: %d SetAnnouncements calls, waiting %v, restoring %v; want none, waiting, nothing restored", calls, st.Desired.Waiting, st.Desired.Restoring)
	}
}

// TestDecommissionDrainsThenWithdraws: Decommission announces with
// GRACEFUL_SHUTDOWN everywhere, then withdraws everything and removes the
// egress routes and the internal default, and returns only then.
func TestDecommissionDrainsThenWithdraws(t *testing.T) {
	cfg := loopConfig(t)
	cfg.Controller.DrainGrace = 300 * time.Millisecond
	r := startLoop(t, cfg)
	waitFor(t, "announced", func() (bool, string) { st, _, _ := r.sp.snapshot(); return len(st) == 3, "" })
	if err := r.loop.Decommission(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.loop.Decommissioned():
	default:
		t.Fatal("Decommission returned before Decommissioned was closed")
	}
	st, _, _ := r.sp.snapshot()
	r.sp.mu.Lock()
	phases, lp := slices.Clone(r.sp.phases), r.sp.lp
	r.sp.mu.Unlock()
	if len(st) != 0 || len(r.eg.uplinks()) != 0 || lp != 0 {
		t.Fatalf("after Decommission: announced %v, egress %v, internal default %d; want nothing", st, r.eg.uplinks(), lp)
	}
	if i := slices.Index(phases, "gshut"); i < 0 || !slices.Contains(phases[i:], "withdrawn") {
		t.Fatalf("speaker phases %v; want graceful shutdown everywhere, then the withdrawal", phases)
	}
	// The sessions stay established, yet fail-static does not bring the
	// announcements back.
	p0 := r.loop.Status().Passes
	waitFor(t, "three more passes", func() (bool, string) { return r.loop.Status().Passes >= p0+3, "" })
	if st, _, _ := r.sp.snapshot(); len(st) != 0 || r.loop.Status().Desired.FailStatic {
		t.Fatalf("after decommission: announced %v, fail-static %v", st, r.loop.Status().Desired.FailStatic)
	}
}

// TestResetUplink: the speaker resets the named uplink's sessions, the
// history records who did it, an unknown uplink is refused.
func TestResetUplink(t *testing.T) {
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	ctx := context.Background()
	if err := r.loop.ResetUplink(ctx, "isp-b", "alice"); err != nil {
		t.Fatal(err)
	}
	if got := r.sp.resetList(); !slices.Equal(got, []string{"isp-b"}) {
		t.Fatalf("resets %v; want [isp-b]", got)
	}
	if !slices.ContainsFunc(r.loop.Events(0, 0), func(e Event) bool {
		return e.Uplink == "isp-b" && strings.Contains(e.Reason, "alice") && slices.Contains(e.Actions, "reset sessions")
	}) {
		t.Fatalf("no reset event naming alice: %v", r.loop.Events(0, 0))
	}
	if err := r.loop.ResetUplink(ctx, "isp-x", "alice"); !errors.Is(err, ErrUnknownUplink) {
		t.Fatalf("reset of an unknown uplink: %v", err)
	}
}

// TestReloadReportsWhatDidNotFollow: a reload the speaker could not fully
// apply runs, and says so (it was only logged, and SIGHUP and the API
// reported success); a reload moving controller.state_dir writes the
// decision file in the new directory with the next pass, although the
// decision did not change.
func TestReloadReportsWhatDidNotFollow(t *testing.T) {
	cfg := loopConfig(t)
	r := startLoop(t, cfg)
	ctx := context.Background()
	waitFor(t, "decision saved", func() (bool, string) {
		_, err := os.Stat(filepath.Join(cfg.Controller.StateDir, decisionFile))
		return err == nil, fmt.Sprint(err)
	})
	r.sp.mu.Lock()
	r.sp.reconfigureErr = errors.New("add peer 2001:db8:4000:1::1: boom")
	r.sp.mu.Unlock()
	next := *cfg
	next.Controller.StateDir = t.TempDir()
	warnings, err := r.loop.Reload(ctx, &next)
	if err != nil {
		t.Fatalf("reload refused: %v; want applied with a warning", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "boom") {
		t.Fatalf("warnings %q; want the speaker's error", warnings)
	}
	waitFor(t, "decision saved in the new state_dir", func() (bool, string) {
		_, err := os.Stat(filepath.Join(next.Controller.StateDir, decisionFile))
		return err == nil, fmt.Sprint(err)
	})
}

package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/dnsupdate"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/nptv6/rfc6296"
	"github.com/multihomed/multihomed/routing"
)

// paConfig is a PA-mode site with two uplinks (ISP-A without BGP), IPv4
// NAT on both and one published host.
func paConfig(t testing.TB, backend string) *config.Config {
	t.Helper()
	key := filepath.Join(t.TempDir(), "tsig.key")
	if err := os.WriteFile(key, []byte("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYg==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test", []byte(`
profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {mode: pa, internal_prefix: "fd7a:5e1d:9c00::/48", internal_prefix_ipv4: 192.0.2.0/24}
controller: {startup_wait: 30s, hold_down: 10s, hold_down_max: 80s, drain_grace: 60s}
nptv6: {backend: `+backend+`}
uplinks:
  - name: isp-a
    interface: eth-a
    gateway: "2001:db8:1000:1::1"
    gateway_ipv4: 198.18.1.1
    pa_prefix: "2001:db8:1001::/48"
    nat44: 198.18.1.2
    health: {targets: ["icmp://2001:db8:9000:1::10"]}
  - name: isp-b
    interface: eth-b
    bgp: {peer_asn: 64502, neighbor: "2001:db8:2000:1::1", neighbor_ipv4: 198.18.2.1}
    pa_prefix: "2001:db8:2001::/48"
    nat44: interface
    health: {targets: ["icmp://2001:db8:9000:1::10"]}
dns:
  zone: site.example
  server: 192.0.2.53
  tsig: {name: mh-update, secret_file: `+key+`}
  hosts: [{name: www, internal: "fd7a:5e1d:9c00:1::80"}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// translated is www's address through the PA prefix (rfc6296,
// independent of Decide).
func translated(t *testing.T, pa string) netip.Addr {
	t.Helper()
	u := dnsUplink{Name: "x", Internal: netip.MustParsePrefix("fd7a:5e1d:9c00::/48"), PA: netip.MustParsePrefix(pa)}
	return outboundVia(t, u, netip.MustParseAddr("fd7a:5e1d:9c00:1::80"))
}

func paObs(now time.Time, a, b health.Verdict) Observed {
	return Observed{Now: now, Started: t0, Uplinks: map[string]UplinkObservation{
		"isp-a": {Probed: true, Health: a},
		"isp-b": {Probed: true, Health: b, Sessions: 1, Established: 1},
	}}
}

// TestDecidePA: the PA part of Decide as uplinks fail, lose carrier, are
// forced down, and all fail (fail-static).
func TestDecidePA(t *testing.T) {
	cfg := paConfig(t, "ebpf")
	a, b := translated(t, "2001:db8:1001::/48"), translated(t, "2001:db8:2001::/48")
	if a == b {
		t.Fatal("the two translations are equal; the test would prove nothing")
	}
	in := netip.MustParsePrefix("fd7a:5e1d:9c00::/48")
	mapA := routing.NPTMapping{Interface: "eth-a", Internal: in, External: netip.MustParsePrefix("2001:db8:1001::/48"), Hairpin: true}
	mapB := routing.NPTMapping{Interface: "eth-b", Internal: in, External: netip.MustParsePrefix("2001:db8:2001::/48"), Hairpin: true}
	inside := netip.MustParsePrefix("192.0.2.0/24")
	rules := []routing.NATRule{{Device: "eth-a", Inside: inside, Source: netip.MustParseAddr("198.18.1.2")}, {Device: "eth-b", Inside: inside}}

	up, down := health.VerdictUp, health.VerdictDown
	carrierA := func(o Observed) Observed {
		u := o.Uplinks["isp-a"]
		u.CarrierDown = true
		o.Uplinks["isp-a"] = u
		return o
	}
	tests := []struct {
		name      string
		obs       Observed
		overrides map[string]Override
		maps      []routing.NPTMapping
		dns       []netip.Addr
		egress    []string
		flush     []string
		failStat  bool
	}{
		{name: "both up", obs: paObs(t0.Add(time.Second), up, up), maps: []routing.NPTMapping{mapA, mapB}, dns: []netip.Addr{a, b}, egress: []string{"isp-a", "isp-b"}},
		{name: "a down: dns b, a still translated inbound, a flushed", obs: paObs(t0.Add(time.Second), down, up), maps: []routing.NPTMapping{mapA, mapB}, dns: []netip.Addr{b}, egress: []string{"isp-b"}, flush: []string{"isp-a"}},
		{name: "a carrier lost: its mapping goes", obs: carrierA(paObs(t0.Add(time.Second), up, up)), maps: []routing.NPTMapping{mapB}, dns: []netip.Addr{b}, egress: []string{"isp-b"}, flush: []string{"isp-a"}},
		{name: "a forced down", obs: paObs(t0.Add(time.Second), up, up), overrides: map[string]Override{"isp-a": {ForceDown: true, Since: t0}},
			maps: []routing.NPTMapping{mapA, mapB}, dns: []netip.Addr{b}, egress: []string{"isp-b"}, flush: []string{"isp-a"}},
		{name: "all down: fail-static keeps egress and publishes all", obs: paObs(t0.Add(time.Second), down, down), maps: []routing.NPTMapping{mapA, mapB}, dns: []netip.Addr{a, b}, egress: []string{"isp-a", "isp-b"}, failStat: true},
		{name: "all down, a without carrier: egress via b only, dns all", obs: carrierA(paObs(t0.Add(time.Second), down, down)), maps: []routing.NPTMapping{mapB}, dns: []netip.Addr{a, b}, egress: []string{"isp-b"}, failStat: true, flush: []string{"isp-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The previous decision had both uplinks carrying egress.
			prev := Decide(cfg, paObs(t0, up, up))
			obs := tt.obs
			obs.Memory, obs.StartupDone, obs.Overrides = prev.Memory, true, tt.overrides
			d := Decide(cfg, obs)
			if d.PA == nil {
				t.Fatal("PA mode without a PA decision")
			}
			cmpAddr := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
			cmpPrefix := cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })
			if diff := cmp.Diff(tt.maps, d.PA.Mappings, cmpPrefix); diff != "" {
				t.Errorf("mappings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(rules, d.PA.NAT44, cmpAddr, cmpPrefix); diff != "" {
				t.Errorf("nat44 (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string][]netip.Addr{"www": tt.dns}, d.PA.DNS, cmpAddr); diff != "" {
				t.Errorf("dns (-want +got):\n%s", diff)
			}
			var eg []string
			for _, dec := range d.Uplinks {
				if dec.Egress {
					eg = append(eg, dec.Uplink)
				}
				if len(dec.Announcements) > 0 {
					t.Errorf("%s announces %v in PA mode", dec.Uplink, dec.Announcements)
				}
			}
			if !slices.Equal(eg, tt.egress) || !slices.Equal(d.FlushNAT, tt.flush) || d.FailStatic != tt.failStat {
				t.Errorf("egress %v flush %v fail-static %v; want %v %v %v", eg, d.FlushNAT, d.FailStatic, tt.egress, tt.flush, tt.failStat)
			}
			// Pure: the same inputs, the same decision; and once the
			// egress change is remembered, no second flush.
			if again := Decide(cfg, obs); !slices.Equal(again.FlushNAT, d.FlushNAT) {
				t.Errorf("Decide is not pure: flush %v then %v", d.FlushNAT, again.FlushNAT)
			}
			obs.Memory = d.Memory
			if next := Decide(cfg, obs); len(next.FlushNAT) != 0 {
				t.Errorf("flush asked again on the next decision: %v", next.FlushNAT)
			}
		})
	}
}

// TestDecidePAWaitingAndKernel: no DNS during the startup wait; the kernel
// backend gets no hairpin (ip6t_NPT cannot).
func TestDecidePAWaitingAndKernel(t *testing.T) {
	cfg := paConfig(t, "kernel")
	obs := paObs(t0, health.VerdictUnknown, health.VerdictUp)
	d := Decide(cfg, obs)
	if !d.Waiting || d.PA == nil || d.PA.DNS != nil {
		t.Fatalf("waiting %v, PA %+v; want waiting without DNS", d.Waiting, d.PA)
	}
	if len(d.PA.Mappings) != 2 || slices.ContainsFunc(d.PA.Mappings, func(m routing.NPTMapping) bool { return m.Hairpin }) {
		t.Errorf("mappings %v; want both, without hairpin", d.PA.Mappings)
	}
	if pi := Decide(testConfig(t), obsAllUp(t0)); pi.PA != nil || len(pi.FlushNAT) > 0 {
		t.Errorf("PI mode got PA state %+v", pi.PA)
	}
}

// fakeTranslator records Set calls and fails the test on mappings that
// break the datapath's contract.
type fakeTranslator struct {
	t    *testing.T
	cfg  *config.Config
	mu   sync.Mutex
	ms   []routing.NPTMapping
	sets int
}

func (f *fakeTranslator) Set(_ context.Context, ms []routing.NPTMapping) ([]routing.NPTMapping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	seen := map[string]bool{}
	for _, m := range ms {
		if _, err := rfc6296.NewTranslator(m); err != nil || seen[m.Interface] || m.Internal != f.cfg.Site.InternalPrefix {
			f.t.Errorf("bad mapping set: %v (%v)", m, err)
		}
		seen[m.Interface] = true
	}
	f.ms = slices.Clone(ms)
	return f.ms, nil
}

func (f *fakeTranslator) Counters(context.Context) ([]routing.NPTCounters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []routing.NPTCounters
	for i, m := range f.ms {
		out = append(out, routing.NPTCounters{Mapping: m, OutPackets: uint64(10 + i)})
	}
	return out, nil
}

func (f *fakeTranslator) interfaces() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.ms {
		out = append(out, m.Interface)
	}
	return out
}

// fakeNAT records Set and FlushUplink; a flush while the egress routes
// still use the device fails the test (the flushed flows would come back
// through the failed uplink).
// fakeReturn records the return-path uplinks applied (devices).
type fakeReturn struct {
	mu      sync.Mutex
	devices []string
}

func (f *fakeReturn) Set(_ context.Context, inside netip.Prefix, ups []routing.ReturnUplink) ([]routing.ReturnUplink, error) {
	if inside != netip.MustParsePrefix("fd7a:5e1d:9c00::/48") {
		return nil, fmt.Errorf("inside %s; want the site's internal prefix", inside)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices = nil
	for _, u := range ups {
		f.devices = append(f.devices, u.Device)
	}
	return ups, nil
}

func (f *fakeReturn) get() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.devices)
}

type fakeNAT struct {
	t       *testing.T
	eg      *fakeEgress
	mu      sync.Mutex
	rules   []routing.NATRule
	flushed []string
	failN   int // FlushUplink fails this many times
}

func (f *fakeNAT) Set(_ context.Context, rules []routing.NATRule) ([]routing.NATRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = slices.Clone(rules)
	return f.rules, nil
}

func (f *fakeNAT) FlushUplink(_ context.Context, device string) (int, error) {
	f.eg.mu.Lock()
	for _, p := range f.eg.paths {
		if p.Device == device {
			f.t.Errorf("conntrack of %s flushed while the egress routes still use it: %v", device, f.eg.paths)
		}
	}
	f.eg.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failN > 0 {
		f.failN--
		return 0, errors.New("injected conntrack failure")
	}
	f.flushed = append(f.flushed, device)
	return 1, nil
}

func (f *fakeNAT) flushes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.flushed)
}

// fakeDNS records the desired states handed over; it never blocks.
type fakeDNS struct {
	mu      sync.Mutex
	desired []map[string][]netip.Addr
	status  routing.DNSStatus
	changed chan struct{}
}

func (f *fakeDNS) SetDesired(d map[string][]netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.desired); n > 0 && cmp.Equal(f.desired[n-1], d, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })) {
		return // unchanged: the runner would not wake
	}
	f.desired = append(f.desired, d)
}

func (f *fakeDNS) Status() routing.DNSStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeDNS) Changed() <-chan struct{} { return f.changed }

func (f *fakeDNS) last() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.desired) == 0 {
		return nil
	}
	return f.desired[len(f.desired)-1]["www"]
}

func (f *fakeDNS) setStatus(s routing.DNSStatus) {
	f.mu.Lock()
	f.status = s
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// TestLoopPA runs the loop in PA mode with recording fakes: the datapath
// follows the decision, a failed uplink's NAT flows are flushed once,
// after its route is gone (retried when the flush fails), DNS follows
// health, and a failing DNS runner shows in status and events.
func TestLoopPA(t *testing.T) {
	cfg := paConfig(t, "ebpf")
	cfg.Controller.StartupWait, cfg.Controller.Resync, cfg.Controller.HoldDown = 0, 50*time.Millisecond, 0
	cfg.Controller.StateDir = t.TempDir()
	r := &running{sp: newFakeSpeaker(t, cfg.SpeakerView()), eg: &fakeEgress{}, h: newFakeHealth(cfg)}
	tr := &fakeTranslator{t: t, cfg: cfg}
	nat := &fakeNAT{t: t, eg: r.eg, failN: 1}
	dns := &fakeDNS{changed: make(chan struct{}, 1)}
	ret := &fakeReturn{}
	r.loop = New(cfg, Deps{Speaker: r.sp, Egress: r.eg, Health: r.h, Translator: tr, NAT: nat, DNS: dns, Return: ret})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.loop.Run(ctx) }()
	defer func() { cancel(); <-done }()

	a, b := translated(t, "2001:db8:1001::/48"), translated(t, "2001:db8:2001::/48")
	waitFor(t, "both mapped, routed and published", func() (bool, string) {
		got := fmt.Sprint(tr.interfaces(), r.eg.uplinks(), dns.last())
		return slices.Equal(tr.interfaces(), []string{"eth-a", "eth-b"}) && len(r.eg.uplinks()) == 2 && slices.Equal(dns.last(), []netip.Addr{a, b}), got
	})
	r.h.set("isp-a", health.VerdictDown)
	waitFor(t, "isp-a out of egress and DNS, its NAT flows flushed (after one failed try)", func() (bool, string) {
		return slices.Equal(r.eg.uplinks(), []string{"isp-b/110"}) && slices.Equal(dns.last(), []netip.Addr{b}) && slices.Equal(nat.flushes(), []string{"eth-a"}),
			fmt.Sprint(r.eg.uplinks(), dns.last(), nat.flushes())
	})
	if !slices.Equal(tr.interfaces(), []string{"eth-a", "eth-b"}) || !slices.Equal(ret.get(), []string{"eth-a", "eth-b"}) {
		t.Errorf("mappings %v, return paths %v; isp-a has carrier, inbound to its PA prefix must stay translated and answered through it", tr.interfaces(), ret.get())
	}
	passes := r.loop.Status().Passes
	waitFor(t, "more passes", func() (bool, string) { return r.loop.Status().Passes >= passes+3, "" })
	if got := nat.flushes(); len(got) != 1 {
		t.Errorf("flushed %v; want one flush for one failure", got)
	}
	r.loop.SetCarrier("eth-a", false)
	waitFor(t, "isp-a's mapping and return path removed without carrier", func() (bool, string) {
		return slices.Equal(tr.interfaces(), []string{"eth-b"}) && slices.Equal(ret.get(), []string{"eth-b"}), fmt.Sprint(tr.interfaces(), ret.get())
	})
	r.loop.SetCarrier("eth-a", true)
	r.h.set("isp-a", health.VerdictUp)
	waitFor(t, "isp-a back everywhere", func() (bool, string) {
		return len(r.eg.uplinks()) == 2 && slices.Equal(dns.last(), []netip.Addr{a, b}) && len(tr.interfaces()) == 2, fmt.Sprint(r.eg.uplinks(), dns.last())
	})

	// The DNS runner's outcome reaches status and the event history.
	dns.setStatus(routing.DNSStatus{Zone: "site.example.", LastAttempt: t0, LastErr: fmt.Errorf("%w: BADKEY", dnsupdate.ErrBadKey), Failures: 2,
		Hosts: []routing.DNSHostStatus{{Name: "www", Desired: []netip.Addr{a, b}}}})
	waitFor(t, "DNS failure in status and events", func() (bool, string) {
		st := r.loop.Status()
		if st.PA == nil || st.PA.DNS == nil || st.PA.DNS.LastErr == nil {
			return false, "no DNS status"
		}
		evs := r.loop.Events(0, 1000)
		return slices.ContainsFunc(evs, func(e Event) bool {
			return strings.Contains(e.Reason, "DNS failing") && strings.Contains(e.Reason, "BADKEY")
		}), fmt.Sprint(evs)
	})
	st := r.loop.Status()
	if len(st.PA.Counters) != 2 || st.PA.Counters[0].OutPackets != 10 || len(st.PA.NAT44) != 2 {
		t.Errorf("status PA = %+v; want the translator's counters and both NAT rules", st.PA)
	}
}

// TestRandomSequencesPA drives random observation sequences (verdicts,
// carrier, overrides, both egress modes) through Decide in PA mode and
// checks after every step: nothing is announced; a mapping exists exactly
// for each uplink with carrier; DNS publishes exactly the translations of
// the usable uplinks, or all of them when none is usable, never nothing;
// fail-static never leaves the site without egress while a link is up; a
// flush is asked exactly when an uplink stops carrying egress, never for
// one that carries it.
func TestRandomSequencesPA(t *testing.T) {
	verdicts := []health.Verdict{health.VerdictUp, health.VerdictDegraded, health.VerdictDown, health.VerdictUnknown}
	base := paConfig(t, "ebpf")
	addrOf := map[string]netip.Addr{"isp-a": translated(t, "2001:db8:1001::/48"), "isp-b": translated(t, "2001:db8:2001::/48")}
	for seed := uint64(0); seed < 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		cfg := *base
		if rng.IntN(2) == 0 {
			cfg.Egress.Mode = config.EgressECMP
		}
		now := t0.Add(time.Minute) // past the startup wait
		var mem map[string]Memory
		prevEgress := map[string]bool{}
		overrides := map[string]Override{}
		for step := range 200 {
			now = now.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
			o := Observed{Now: now, Started: t0, StartupDone: true, Uplinks: map[string]UplinkObservation{}, Memory: mem, Overrides: overrides}
			for _, u := range cfg.Uplinks {
				sessions := len(u.BGP.Sessions())
				o.Uplinks[u.Name] = UplinkObservation{Probed: true, Health: verdicts[rng.IntN(4)], Sessions: sessions, Established: rng.IntN(sessions + 1), CarrierDown: rng.IntN(6) == 0}
			}
			if rng.IntN(15) == 0 {
				name := cfg.Uplinks[rng.IntN(2)].Name
				overrides[name] = Override{Drain: rng.IntN(2) == 0, ForceDown: rng.IntN(3) == 0, Since: now, Expires: now.Add(time.Duration(rng.IntN(60)) * time.Second)}
			}
			d := Decide(&cfg, o)
			mem = d.Memory
			where := fmt.Sprintf("seed %d step %d", seed, step)
			var mapped, usable, all, egress, flush []string
			for _, m := range d.PA.Mappings {
				mapped = append(mapped, m.Interface)
			}
			var wantMapped []string
			anyLink := false
			for _, dec := range d.Uplinks {
				u, _ := uplinkConfig(&cfg, dec.Uplink)
				if len(dec.Announcements) > 0 {
					t.Fatalf("%s: %s announces in PA mode", where, dec.Uplink)
				}
				if !o.Uplinks[u.Name].CarrierDown {
					wantMapped = append(wantMapped, u.Interface)
					if dec.State != StateForcedDown {
						anyLink = true
					}
				}
				all = append(all, u.Name)
				if dec.Egress {
					egress = append(egress, u.Name)
				}
				if dec.Egress && !d.FailStatic && (dec.State == StateUp || dec.State == StateDegraded) {
					usable = append(usable, u.Name)
				}
				if prevEgress[u.Name] && !dec.Egress {
					flush = append(flush, u.Name)
				}
				prevEgress[u.Name] = dec.Egress
			}
			if !slices.Equal(mapped, wantMapped) {
				t.Fatalf("%s: mappings on %v; want those with carrier %v", where, mapped, wantMapped)
			}
			if anyLink && len(egress) == 0 {
				t.Fatalf("%s: no egress although a link is up (fail-static)", where)
			}
			if !slices.Equal(d.FlushNAT, flush) {
				t.Fatalf("%s: flush %v; want %v (the uplinks that just left egress)", where, d.FlushNAT, flush)
			}
			pub := usable
			if len(pub) == 0 {
				pub = all
			}
			var want []netip.Addr
			for _, n := range pub {
				want = append(want, addrOf[n])
			}
			slices.SortFunc(want, netip.Addr.Compare)
			if got := d.PA.DNS["www"]; !slices.Equal(got, want) {
				t.Fatalf("%s: www published as %v; want %v (uplinks %v)", where, got, want, pub)
			}
		}
	}
}

// TestCheckReloadPA: what the daemon builds at start (mode, NPTv6 backend,
// the DNS updater) changes on restart only; a PA prefix may change on
// reload (the translator's Set moves the mapping).
func TestCheckReloadPA(t *testing.T) {
	old := paConfig(t, "ebpf")
	tests := []struct {
		name    string
		change  func(c *config.Config)
		refused bool
	}{
		{"same", func(*config.Config) {}, false},
		{"pa prefix", func(c *config.Config) { c.Uplinks[0].PAPrefix = netip.MustParsePrefix("2001:db8:1002::/48") }, false},
		{"backend", func(c *config.Config) { c.NPTv6.Backend = config.NPTv6Kernel }, true},
		{"mode", func(c *config.Config) { c.Site.Mode = config.ModePI }, true},
		{"dns ttl", func(c *config.Config) { d := *c.DNS; d.TTL = time.Minute; c.DNS = &d }, true},
		{"dns removed", func(c *config.Config) { c.DNS = nil }, true},
	}
	for _, tt := range tests {
		next := *old
		next.Uplinks = slices.Clone(old.Uplinks)
		tt.change(&next)
		_, err := CheckReload(old, &next)
		if got := errors.Is(err, ErrReloadRefusedPA); got != tt.refused {
			t.Errorf("%s: CheckReload = %v; refused %v, want %v", tt.name, err, got, tt.refused)
		}
	}
}

// TestDecidePAReturn: every PA uplink with a link gets its replies routed
// back through it, with its probe mark; an uplink without a health block
// gets the default mark and a table of its own (ProbeTablesFor), unless
// another uplink's health block took them.
func TestDecidePAReturn(t *testing.T) {
	up := health.VerdictUp
	markA, markB := health.MarkBase, health.MarkBase+1
	obsUp := func() Observed {
		o := paObs(t0.Add(time.Second), up, up)
		o.StartupDone = true
		return o
	}
	cfg := paConfig(t, "ebpf")
	if diff := cmp.Diff([]routing.ReturnUplink{{Device: "eth-a", Mark: markA}, {Device: "eth-b", Mark: markB}}, Decide(cfg, obsUp()).PA.Return); diff != "" {
		t.Errorf("both up (-want +got):\n%s", diff)
	}
	o := obsUp()
	a := o.Uplinks["isp-a"]
	a.CarrierDown = true
	o.Uplinks["isp-a"] = a
	if diff := cmp.Diff([]routing.ReturnUplink{{Device: "eth-b", Mark: markB}}, Decide(cfg, o).PA.Return); diff != "" {
		t.Errorf("isp-a without carrier: nothing can come in through it (-want +got):\n%s", diff)
	}

	// isp-b without a health block (its BGP session tells whether it works).
	cfg.Uplinks[1].Health = nil
	if diff := cmp.Diff([]routing.ReturnUplink{{Device: "eth-a", Mark: markA}, {Device: "eth-b", Mark: markB}}, Decide(cfg, obsUp()).PA.Return); diff != "" {
		t.Errorf("isp-b without health (-want +got):\n%s", diff)
	}
	tables := ProbeTablesFor(cfg)
	if len(tables) != 2 || tables[1].Uplink != "isp-b" || tables[1].Mark != markB || tables[1].Table != health.TableBase+1 || tables[1].Device != "eth-b" || len(tables[1].Gateways) == 0 {
		t.Errorf("probe tables %+v; want isp-b's own table %d for mark %#x via its gateways", tables, health.TableBase+1, markB)
	}
	// isp-a's health block took isp-b's default mark: no return path for
	// isp-b (replies follow egress), and no table for it either.
	cfg.Uplinks[0].Health.Mark = markB
	if diff := cmp.Diff([]routing.ReturnUplink{{Device: "eth-a", Mark: markB}}, Decide(cfg, obsUp()).PA.Return); diff != "" {
		t.Errorf("isp-b's default mark taken (-want +got):\n%s", diff)
	}
	if tables := ProbeTablesFor(cfg); len(tables) != 1 {
		t.Errorf("probe tables %+v; want isp-a's only", tables)
	}
	if pi := Decide(testConfig(t), obsAllUp(t0)); pi.PA != nil {
		t.Errorf("PI mode got PA state %+v", pi.PA)
	}
}

package api

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/multihomed/multihomed/api/client"
	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/controller"
)

// call is one API call made with a valid request; the matrix checks only
// the status code.
type call struct {
	name  string
	write bool
	do    func(ctx context.Context, cc *grpc.ClientConn) error
}

func calls(h *harness) []call {
	c := func(cc *grpc.ClientConn) apiv1.MultihomedClient { return apiv1.NewMultihomedClient(cc) }
	return []call{
		{"GetStatus", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).GetStatus(ctx, &apiv1.GetStatusRequest{})
			return err
		}},
		{"ListEvents", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).ListEvents(ctx, &apiv1.ListEventsRequest{})
			return err
		}},
		{"WatchEvents", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := c(cc).WatchEvents(ctx, &apiv1.WatchEventsRequest{Replay: 1})
			if err != nil {
				return err
			}
			_, err = st.Recv() // the harness holds one event
			return err
		}},
		{"ValidateConfig", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).ValidateConfig(ctx, &apiv1.ValidateConfigRequest{Config: testConfig})
			return err
		}},
		{"GetConfig", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).GetConfig(ctx, &apiv1.GetConfigRequest{})
			return err
		}},
		{"GetVersion", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).GetVersion(ctx, &apiv1.GetVersionRequest{})
			return err
		}},
		{"Drain", true, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).Drain(ctx, &apiv1.DrainRequest{Uplink: "isp-a", Reason: "maintenance"})
			return err
		}},
		{"Undrain", true, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).Undrain(ctx, &apiv1.UndrainRequest{Uplink: "isp-a"})
			return err
		}},
		{"SetOverride", true, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).SetOverride(ctx, &apiv1.SetOverrideRequest{Uplink: "isp-b", Action: &apiv1.SetOverrideRequest_Prepend{Prepend: &apiv1.Prepend{Count: 2}}, Reason: "shift inbound"})
			return err
		}},
		{"ResetUplink", true, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).ResetUplink(ctx, &apiv1.ResetUplinkRequest{Uplink: "isp-a"})
			return err
		}},
		{"ReloadConfig", true, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := c(cc).ReloadConfig(ctx, &apiv1.ReloadConfigRequest{})
			return err
		}},
		{"Health", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: apiv1.Multihomed_ServiceDesc.ServiceName})
			return err
		}},
		{"Reflection", false, func(ctx context.Context, cc *grpc.ClientConn) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
			if err != nil {
				return err
			}
			// A refused stream may end before Send; Recv then has the status.
			_ = st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			resp, err := st.Recv()
			if err != nil {
				return err
			}
			var names []string
			for _, s := range resp.GetListServicesResponse().GetService() {
				names = append(names, s.GetName())
			}
			if !slices.Contains(names, "multihomed.v1.Multihomed") || !slices.Contains(names, "grpc.health.v1.Health") {
				return fmt.Errorf("reflection lists %v", names)
			}
			return nil
		}},
	}
}

// TestAuthorizationMatrix: every call x viewer / operator / no
// certificate / a certificate of the right CA without a role / a
// certificate of another CA, over bufconn and over loopback TCP, both with
// TLS. Health is open to all; reads need viewer; writes need operator.
func TestAuthorizationMatrix(t *testing.T) {
	for _, transport := range []string{"bufconn", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			h := newHarness(t, transport, harnessOpts{})
			h.ctl.addEvent("isp-a", controller.StateDown)
			who := []struct {
				name       string
				cert       *tls.Certificate
				read, writ codes.Code
			}{
				{"operator", &h.pki.operator, codes.OK, codes.OK},
				{"viewer", &h.pki.viewer, codes.OK, codes.PermissionDenied},
				{"no certificate", nil, codes.Unauthenticated, codes.Unauthenticated},
				{"no role", &h.pki.stranger, codes.PermissionDenied, codes.PermissionDenied},
				{"foreign CA", &h.pki.foreign, codes.Unauthenticated, codes.Unauthenticated},
			}
			for _, w := range who {
				cc := h.dial(t, w.cert)
				for _, c := range calls(h) {
					want := w.read
					if c.write {
						want = w.writ
					}
					if c.name == "Health" {
						want = codes.OK
					}
					err := c.do(testCtx(t), cc)
					if got := status.Code(err); got != want {
						t.Errorf("%s calls %s: %v (%v); want %v", w.name, c.name, got, err, want)
					}
				}
			}
			// Every write left an audit line, refused ones too.
			log := h.log.String()
			for _, want := range []string{
				`msg=audit who="cert:CN=noc-alice" role=operator call=/multihomed.v1.Multihomed/Drain`,
				`msg=audit who="cert:CN=noc-dashboard" role=viewer call=/multihomed.v1.Multihomed/Drain`,
				`msg=audit who=tls:no-certificate role=none call=/multihomed.v1.Multihomed/Drain`,
				`msg=audit who="cert:CN=noc-alice(unverified)" role=none call=/multihomed.v1.Multihomed/Drain`,
				`result=PermissionDenied`, `result=Unauthenticated`,
			} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			if strings.Contains(log, "call=/multihomed.v1.Multihomed/GetStatus") {
				t.Errorf("reads are not audited, but the log has:\n%s", log)
			}
		})
	}
}

func TestGetStatus(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	cl := h.client(t, &h.pki.viewer)
	resp, err := cl.GetStatus(testCtx(t), &apiv1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetStatus()
	if st.GetMode() != "pi" || len(st.GetUplinks()) != 2 || st.GetInternalDefaultLocalPref() != 200 {
		t.Fatalf("status = %v", st)
	}
	a, b := st.GetUplinks()[0], st.GetUplinks()[1]
	if a.GetName() != "isp-a" || a.GetInterface() != "eth-a" || a.GetState() != "up" || a.GetReason() != "probes up" {
		t.Errorf("isp-a = %v", a)
	}
	if s := a.GetSessions()[0]; s.GetState() != "established" || s.GetUptime().AsDuration() != 90*time.Minute {
		t.Errorf("isp-a session = %v; want established, up 1h30m", s)
	}
	if an := a.GetAnnounced()[0]; an.GetPrefix() != "2001:db8:face::/48" || an.Med == nil || an.GetMed() != 10 {
		t.Errorf("isp-a announced = %v", an)
	}
	if an := b.GetAnnounced()[0]; an.GetPrepend() != 4 || !slices.Equal(an.GetCommunities(), []string{"64502:200"}) {
		t.Errorf("isp-b announced = %v", an)
	}
	if p := b.GetProbes(); p.GetVerdict() != "degraded" || p.GetLossPercent() != 12 || p.GetRttP95().AsDuration() != 45*time.Millisecond {
		t.Errorf("isp-b probes = %v", p)
	}
	if e := st.GetEgress(); len(e) != 1 || e[0].GetNextHops()[0].GetDevice() != "eth-a" {
		t.Errorf("egress = %v", e)
	}
}

func TestListEventsPages(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	for range 250 {
		h.ctl.addEvent("isp-a", controller.StateDown)
	}
	cl := h.client(t, &h.pki.viewer)
	var seqs []uint64
	after := uint64(0)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		resp, err := cl.ListEvents(testCtx(t), &apiv1.ListEventsRequest{After: after, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEvents() {
			seqs = append(seqs, e.GetSeq())
		}
		after = resp.GetNextAfter()
		if !resp.GetMore() {
			break
		}
	}
	if len(seqs) != 250 || seqs[0] != 1 || seqs[249] != 250 {
		t.Errorf("paged %d events %v...; want 1..250", len(seqs), seqs[:min(3, len(seqs))])
	}
	if _, err := cl.ListEvents(testCtx(t), &apiv1.ListEventsRequest{Limit: 5000}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("limit 5000: %v; want InvalidArgument", err)
	}
}

func TestWatchEventsReplayThenLive(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	for range 5 {
		h.ctl.addEvent("isp-a", controller.StateDown)
	}
	st, cancel := h.watchAsViewer(t, 2)
	if a, b := recvSeq(t, st), recvSeq(t, st); a != 4 || b != 5 {
		t.Fatalf("replay = %d, %d; want 4, 5", a, b)
	}
	h.ctl.addEvent("isp-b", controller.StateDrained)
	if s := recvSeq(t, st); s != 6 {
		t.Fatalf("live event seq %d; want 6", s)
	}
	cancel()
	// The watcher unsubscribes when the client goes away.
	deadline := time.Now().Add(10 * time.Second)
	for h.ctl.subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream's subscription outlived the client")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchEventsSlowConsumer: a client that does not read while the
// controller produces thousands of events. The producer never blocks (it
// finishes within a deadline while the client is stalled), and when the
// client reads again it gets a Lagged marker with the number missed, then
// events again, in order.
func TestWatchEventsSlowConsumer(t *testing.T) {
	// Fixed, small flow-control windows (which also turn off BDP
	// estimation), so gRPC's own buffering cannot absorb the burst.
	win := grpc.WithInitialWindowSize(64 << 10)
	h := newHarness(t, "bufconn", harnessOpts{watchBuffer: 8, serverOpts: []grpc.ServerOption{grpc.InitialWindowSize(64 << 10), grpc.InitialConnWindowSize(64 << 10)}})
	cc := h.dial(t, &h.pki.viewer, win, grpc.WithInitialConnWindowSize(64<<10))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	st, err := apiv1.NewMultihomedClient(cc).WatchEvents(ctx, &apiv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the server subscribed, so the burst is live, not replay.
	deadline := time.Now().Add(10 * time.Second)
	for h.ctl.subscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("stream never subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	const n = 20000
	produced := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for range n {
			h.ctl.addEvent("isp-a", controller.StateDown)
		}
		produced <- time.Since(start)
	}()
	select {
	case d := <-produced:
		t.Logf("%d events produced in %s while the client read nothing", n, d)
	case <-time.After(15 * time.Second):
		t.Fatal("the producer blocked on a client that does not read")
	}
	var lagged, events uint64
	last := uint64(0)
	for events+lagged < n {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("after %d events: %v", events, err)
		}
		switch {
		case m.GetLagged() != nil:
			lagged += m.GetLagged().GetMissed()
		case m.GetEvent() != nil:
			if s := m.GetEvent().GetSeq(); s <= last {
				t.Fatalf("event %d after %d: out of order", s, last)
			} else {
				last = s
			}
			events++
		}
	}
	if lagged == 0 {
		t.Fatalf("no Lagged marker; %d events delivered of %d", events, n)
	}
	if events+lagged != n {
		t.Errorf("delivered %d + missed %d = %d; want %d", events, lagged, events+lagged, n)
	}
	t.Logf("delivered %d, missed %d (reported in Lagged markers)", events, lagged)
}

func TestWrites(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	cl := h.client(t, &h.pki.operator)
	ctx := testCtx(t)

	resp, err := cl.Drain(ctx, &apiv1.DrainRequest{Uplink: "isp-a", Reason: "fibre work", Duration: durationpb.New(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if o := resp.GetOverride(); !o.GetDrain() || o.GetWho() != "cert:CN=noc-alice" || o.GetExpires().AsTime() != t0.Add(2*time.Hour) {
		t.Errorf("drain override = %v", o)
	}
	if _, err := cl.SetOverride(ctx, &apiv1.SetOverrideRequest{Uplink: "isp-b", Action: &apiv1.SetOverrideRequest_ForceDown{ForceDown: &apiv1.ForceDown{}}, Reason: "ISP-B incident"}); err != nil {
		t.Fatal(err)
	}
	// Undrain refuses to lift a force-down.
	if _, err := cl.Undrain(ctx, &apiv1.UndrainRequest{Uplink: "isp-b"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("undrain of a forced-down uplink: %v; want FailedPrecondition", err)
	}
	u, err := cl.Undrain(ctx, &apiv1.UndrainRequest{Uplink: "isp-a"})
	if err != nil || !u.GetWasDrained() {
		t.Errorf("undrain isp-a: %v, %v; want was_drained", u, err)
	}
	if _, err := cl.SetOverride(ctx, &apiv1.SetOverrideRequest{Uplink: "isp-b", Action: &apiv1.SetOverrideRequest_Clear{Clear: &apiv1.Clear{}}}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`drain isp-a "fibre work" by cert:CN=noc-alice for 2h0m0s`,
		`force-down isp-b "ISP-B incident" by cert:CN=noc-alice for 0s`,
		"clear isp-a", "clear isp-b",
	}
	if got := h.ctl.Calls(); !slices.Equal(got, want) {
		t.Errorf("controller calls:\n%q\nwant\n%q", got, want)
	}

	bad := []struct {
		name string
		do   func() error
		code codes.Code
	}{
		{"unknown uplink", func() error {
			_, err := cl.Drain(ctx, &apiv1.DrainRequest{Uplink: "isp-z", Reason: "x"})
			return err
		}, codes.NotFound},
		{"no reason", func() error { _, err := cl.Drain(ctx, &apiv1.DrainRequest{Uplink: "isp-a"}); return err }, codes.InvalidArgument},
		{"negative duration", func() error {
			_, err := cl.Drain(ctx, &apiv1.DrainRequest{Uplink: "isp-a", Reason: "x", Duration: durationpb.New(-time.Hour)})
			return err
		}, codes.InvalidArgument},
		{"prepend 11", func() error {
			_, err := cl.SetOverride(ctx, &apiv1.SetOverrideRequest{Uplink: "isp-a", Reason: "x", Action: &apiv1.SetOverrideRequest_Prepend{Prepend: &apiv1.Prepend{Count: 11}}})
			return err
		}, codes.InvalidArgument},
		{"no action", func() error {
			_, err := cl.SetOverride(ctx, &apiv1.SetOverrideRequest{Uplink: "isp-a", Reason: "x"})
			return err
		}, codes.InvalidArgument},
	}
	for _, b := range bad {
		if err := b.do(); status.Code(err) != b.code {
			t.Errorf("%s: %v; want %v", b.name, err, b.code)
		}
	}
	if n := len(h.ctl.Calls()); n != len(want) {
		t.Errorf("refused requests reached the controller: %q", h.ctl.Calls()[len(want):])
	}
}

func TestConfigCalls(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	cl := h.client(t, &h.pki.operator)
	ctx := testCtx(t)
	broken := strings.NewReplacer("asn: 64500", "asn: 0", `"2001:db8:2000:1::1"`, `"zz"`, "name: isp-b", "name: isp-a").Replace(testConfig)
	wantPaths := []string{"node.asn", "uplinks[1].name", "uplinks[1].bgp.neighbor"}

	// Valid, with advice: a health block with a single target.
	advised := strings.Replace(testConfig, `prepend: 1}`, "prepend: 1}\n    health: {targets: [\"icmp://2001:db8:9000:1::10\"]}", 1)
	v, err := cl.ValidateConfig(ctx, &apiv1.ValidateConfigRequest{Config: advised})
	if err != nil || !v.GetValid() || len(v.GetAdvice()) != 1 || v.GetAdvice()[0].GetPath() != "uplinks[1].health.targets" {
		t.Fatalf("validate with one probe target: %v, %v; want valid with advice at uplinks[1].health.targets", v, err)
	}
	if v, err := cl.ValidateConfig(ctx, &apiv1.ValidateConfigRequest{Config: testConfig}); err != nil || !v.GetValid() || len(v.GetAdvice()) != 0 {
		t.Fatalf("validate the plain config: %v, %v; want valid without advice", v, err)
	}

	v, err = cl.ValidateConfig(ctx, &apiv1.ValidateConfigRequest{Config: broken})
	if err != nil || v.GetValid() {
		t.Fatalf("validate broken: %v, %v", v, err)
	}
	var paths []string
	for _, p := range v.GetProblems() {
		paths = append(paths, p.GetPath())
	}
	for _, p := range wantPaths {
		if !slices.Contains(paths, p) {
			t.Errorf("validate: no problem at %s in %v", p, v.GetProblems())
		}
	}

	// A broken file: every problem comes back, nothing is applied.
	h.cfg.setFile(broken)
	_, err = cl.ReloadConfig(ctx, &apiv1.ReloadConfigRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("reload broken: %v; want FailedPrecondition", err)
	}
	var got []string
	for _, p := range client.ConfigProblems(err) {
		got = append(got, p.Path)
	}
	for _, p := range wantPaths {
		if !slices.Contains(got, p) {
			t.Errorf("reload: no problem at %s in %v", p, got)
		}
	}
	h.cfg.setFile(strings.Replace(testConfig, "prepend: 1", "prepend: 2", 1))
	if r, err := cl.ReloadConfig(ctx, &apiv1.ReloadConfigRequest{}); err != nil || r.GetFile() == "" {
		t.Fatalf("reload good: %v, %v", r, err)
	}

	c, err := cl.GetConfig(ctx, &apiv1.GetConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.GetJson(), "s3cret") || !strings.Contains(c.GetJson(), "[redacted]") || !strings.Contains(c.GetJson(), `"Prepend": 2`) {
		t.Errorf("GetConfig must hold the reloaded config with the password redacted:\n%s", c.GetJson())
	}
}

package api

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/controller"
)

// Allocation budget of one API call, whatever the request: a fixed part
// plus a small multiple of the request's size (requests are at most
// MaxConfigLen + 64 KiB on the wire). A method whose cost grows faster
// than its input (a quadratic check, an unbounded answer) breaks it.
const (
	allocBase    = 2 << 20
	allocPerByte = 16
)

// fuzzMethod decodes the fuzzer's bytes as a request of req's type, as
// gRPC would, calls the method as an operator, and fails when the call
// allocates more than the budget. Errors are fine: the API refuses most
// random requests.
func fuzzMethod[R proto.Message](f *testing.F, seeds []R, call func(ctx context.Context, s *Server, req R) error) {
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctl := newFakeController()
	for range 50 {
		ctl.addEvent("isp-a", controller.StateDown)
	}
	cfg := newFakeConfig(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var zero R
		req := zero.ProtoReflect().New().Interface().(R)
		if proto.Unmarshal(data, req) != nil {
			return
		}
		svc := NewServer(Options{Controller: ctl, Config: cfg, Logger: slogDiscard(), Now: func() time.Time { return t0 }})
		ctx := context.WithValue(context.Background(), identityKey{}, Identity{Name: "fuzz", Role: RoleOperator})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_ = call(ctx, svc, req)
		runtime.ReadMemStats(&after)
		if got, budget := after.TotalAlloc-before.TotalAlloc, uint64(allocBase+allocPerByte*len(data)); got > budget {
			t.Fatalf("one call allocated %d bytes for a %d-byte request; the budget is %d", got, len(data), budget)
		}
	})
}

func FuzzGetStatus(f *testing.F) {
	fuzzMethod(f, []*apiv1.GetStatusRequest{{}}, func(ctx context.Context, s *Server, r *apiv1.GetStatusRequest) error {
		_, err := s.GetStatus(ctx, r)
		return err
	})
}

func FuzzListEvents(f *testing.F) {
	fuzzMethod(f, []*apiv1.ListEventsRequest{{}, {After: 10, Limit: 1000}, {Limit: 1 << 31}}, func(ctx context.Context, s *Server, r *apiv1.ListEventsRequest) error {
		_, err := s.ListEvents(ctx, r)
		return err
	})
}

// watchStream is a WatchEvents stream whose client goes away after the
// first message (or at once when the history has nothing to send).
type watchStream struct {
	grpc.ServerStream
	ctx    context.Context
	cancel context.CancelFunc
	sent   int
}

func (w *watchStream) Context() context.Context { return w.ctx }
func (w *watchStream) Send(*apiv1.WatchEventsResponse) error {
	w.sent++
	w.cancel()
	return nil
}
func (w *watchStream) SetHeader(metadata.MD) error  { return nil }
func (w *watchStream) SendHeader(metadata.MD) error { return nil }
func (w *watchStream) SetTrailer(metadata.MD)       {}

func FuzzWatchEvents(f *testing.F) {
	fuzzMethod(f, []*apiv1.WatchEventsRequest{{}, {Replay: 1000}, {After: 49}, {After: 1 << 60}}, func(ctx context.Context, s *Server, r *apiv1.WatchEventsRequest) error {
		// Bounded: an idle stream ends after a moment.
		ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		return s.WatchEvents(r, &watchStream{ctx: ctx, cancel: cancel})
	})
}

func FuzzDrain(f *testing.F) {
	fuzzMethod(f, []*apiv1.DrainRequest{{Uplink: "isp-a", Reason: "fibre work", Duration: durationpb.New(time.Hour)}, {Uplink: "nope"}}, func(ctx context.Context, s *Server, r *apiv1.DrainRequest) error {
		_, err := s.Drain(ctx, r)
		return err
	})
}

func FuzzUndrain(f *testing.F) {
	fuzzMethod(f, []*apiv1.UndrainRequest{{Uplink: "isp-a"}, {Uplink: "ISP A"}}, func(ctx context.Context, s *Server, r *apiv1.UndrainRequest) error {
		_, err := s.Undrain(ctx, r)
		return err
	})
}

func FuzzSetOverride(f *testing.F) {
	fuzzMethod(f, []*apiv1.SetOverrideRequest{
		{Uplink: "isp-b", Reason: "shift", Action: &apiv1.SetOverrideRequest_Prepend{Prepend: &apiv1.Prepend{Count: 3}}},
		{Uplink: "isp-b", Action: &apiv1.SetOverrideRequest_Clear{Clear: &apiv1.Clear{}}},
	}, func(ctx context.Context, s *Server, r *apiv1.SetOverrideRequest) error {
		_, err := s.SetOverride(ctx, r)
		return err
	})
}

func FuzzValidateConfig(f *testing.F) {
	fuzzMethod(f, []*apiv1.ValidateConfigRequest{{Config: testConfig}, {Config: "site: {prefixes: [2001:db8::/48, 2001:db8::/48]}"}, {Config: "{"},
		// 2,000 copies of one prefix: once 1,999,000 problems and ~790 MiB
		// (issue #13); the allocation budget fails on that again.
		{Config: "site: {prefixes: [" + strings.Repeat("2001:db8:face::/48, ", 1999) + "2001:db8:face::/48]}"}}, func(ctx context.Context, s *Server, r *apiv1.ValidateConfigRequest) error {
		_, err := s.ValidateConfig(ctx, r)
		return err
	})
}

func FuzzReloadConfig(f *testing.F) {
	fuzzMethod(f, []*apiv1.ReloadConfigRequest{{}}, func(ctx context.Context, s *Server, r *apiv1.ReloadConfigRequest) error {
		_, err := s.ReloadConfig(ctx, r)
		return err
	})
}

func FuzzGetConfig(f *testing.F) {
	fuzzMethod(f, []*apiv1.GetConfigRequest{{}}, func(ctx context.Context, s *Server, r *apiv1.GetConfigRequest) error {
		_, err := s.GetConfig(ctx, r)
		return err
	})
}

func FuzzGetVersion(f *testing.F) {
	fuzzMethod(f, []*apiv1.GetVersionRequest{{}}, func(ctx context.Context, s *Server, r *apiv1.GetVersionRequest) error {
		_, err := s.GetVersion(ctx, r)
		return err
	})
}

func FuzzResetUplink(f *testing.F) {
	fuzzMethod(f, []*apiv1.ResetUplinkRequest{{Uplink: "isp-a", Reason: "max-prefix"}, {Uplink: "isp-z"}}, func(ctx context.Context, s *Server, r *apiv1.ResetUplinkRequest) error {
		_, err := s.ResetUplink(ctx, r)
		return err
	})
}

// FuzzShutdown runs without Options.Exit: every request ends in a refusal
// after the checks, and nothing exits.
func FuzzShutdown(f *testing.F) {
	fuzzMethod(f, []*apiv1.ShutdownRequest{{Withdraw: true, Reason: "retired"}, {Reason: "x"}}, func(ctx context.Context, s *Server, r *apiv1.ShutdownRequest) error {
		_, err := s.Shutdown(ctx, r)
		return err
	})
}

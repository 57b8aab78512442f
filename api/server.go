package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/health"
)

// Controller is what the API needs of the controller loop
// (controller.Loop). Status, Events and SubscribeEvents are safe for
// concurrent use and never wait for the loop; the commands wait for the
// loop's reply, or ctx.
type Controller interface {
	Status() *controller.Status
	// Events returns up to limit events after a sequence number, in
	// O(log n + limit).
	Events(after uint64, limit int) []controller.Event
	// EventBounds returns the oldest and newest sequence numbers kept.
	EventBounds() (oldest, newest uint64)
	SubscribeEvents() (<-chan struct{}, func())
	Drain(ctx context.Context, uplink, reason, who string, d time.Duration) error
	ForceDown(ctx context.Context, uplink, reason, who string, d time.Duration) error
	Prepend(ctx context.Context, uplink string, n uint8, reason, who string, d time.Duration) error
	ClearOverride(ctx context.Context, uplink string) error
	// Undrain ends a drain; controller.ErrNotDrained when the uplink holds
	// another kind of override (checked and cleared in one step).
	Undrain(ctx context.Context, uplink string) (bool, error)
	// ResetUplink resets the uplink's BGP sessions through the speaker and
	// clears a hold-down (max-prefix); controller.ErrUnknownUplink for an
	// uplink not configured.
	ResetUplink(ctx context.Context, uplink, who string) error
	// Decommission drains every uplink for controller.drain_grace, then
	// withdraws everywhere and removes the egress routes; it returns when
	// that is done (or ctx ends).
	Decommission(ctx context.Context, who string) error
}

// HealthReader gives the prober's live figures (health.Monitor). Safe for
// concurrent use, never waits for the controller.
type HealthReader interface {
	Snapshot() health.Snapshot
}

// ConfigStore is what the API needs of configuration handling (the daemon
// implements it over its file). Safe for concurrent use.
type ConfigStore interface {
	// Current returns the configuration in force and the file it came from.
	Current() (*config.Config, string)
	// Validate checks configuration text; a rejection is a *config.Error.
	// For valid text it returns the configuration's advice (config.Advice).
	Validate(text []byte) ([]config.Problem, error)
	// Reload reads the file again, validates and applies it. It returns
	// warnings about settings that change only on restart; a rejected file
	// is a *config.Error and leaves the running configuration in place.
	Reload(ctx context.Context) (warnings []string, err error)
}

// Limits on requests.
const (
	// MaxOverrideDuration bounds drains and overrides with an expiry.
	MaxOverrideDuration = 90 * 24 * time.Hour
	// MaxReasonLen bounds a reason, in bytes.
	MaxReasonLen = 200
	// MaxConfigLen bounds ValidateConfig's text (and, with a margin, every
	// request message). The largest legal configuration is far smaller.
	MaxConfigLen = 256 << 10
	// MaxProblems bounds the problems (and the advice) one answer lists;
	// a last entry says how many more there were.
	MaxProblems = 100
	// MaxProblemLen bounds each problem's path and message, in bytes.
	MaxProblemLen = 512
	// MaxConcurrentValidations bounds the ValidateConfig calls running at
	// once; more are refused with ResourceExhausted, so parallel callers
	// cannot multiply the cost of one.
	MaxConcurrentValidations = 2
	defaultPage              = 100
	maxPage                  = 1000
)

// Server implements apiv1.MultihomedServer.
type Server struct {
	apiv1.UnimplementedMultihomedServer
	ctl         Controller
	exit        func()
	health      HealthReader
	translation TranslationReader
	cfg         ConfigStore
	log         *slog.Logger
	now         func() time.Time
	watchBuffer int
	maxStreams  int
	// validations holds a token per running ValidateConfig.
	validations chan struct{}
	closing     chan struct{}
	closeOnce   sync.Once
	exitOnce    sync.Once

	streamsMu sync.Mutex
	// streams counts open WatchEvents streams per principal; guarded by
	// streamsMu.
	streams map[string]int
}

// Options configure a Server.
type Options struct {
	Controller Controller
	// Health, when set, gives GetStatus live probe figures; nil means the
	// figures of the controller's last pass (which can be minutes old:
	// the loop only runs when something changes).
	Health HealthReader
	// Translation, when set (PA mode), gives GetStatus the NPTv6 mappings
	// and counters as of the call; nil means those of the last pass.
	Translation TranslationReader
	Config      ConfigStore
	// Logger receives audit lines; nil means slog.Default().
	Logger *slog.Logger
	// WatchBuffer bounds each WatchEvents client's backlog (0: the
	// configuration default).
	WatchBuffer int
	// MaxStreamsPerPrincipal bounds the WatchEvents streams one caller
	// (a certificate's name, a socket peer's uid) may hold open at once
	// (api.max_streams_per_principal; 0: the config's default).
	MaxStreamsPerPrincipal int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Exit is called once Shutdown has decommissioned the edge; the
	// daemon then stops (exit status 0). It must not block. nil: Shutdown
	// is refused (Unimplemented) because nothing would stop the daemon.
	Exit func()
}

// NewServer returns the service implementation.
func NewServer(o Options) *Server {
	s := &Server{ctl: o.Controller, exit: o.Exit, health: o.Health, translation: o.Translation, cfg: o.Config, log: o.Logger, now: o.Now, watchBuffer: o.WatchBuffer, closing: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.watchBuffer <= 0 {
		s.watchBuffer = config.DefaultWatchBuffer
	}
	s.maxStreams = o.MaxStreamsPerPrincipal
	if s.maxStreams <= 0 {
		s.maxStreams = config.DefaultMaxStreamsPerPrincipal
	}
	s.streams = map[string]int{}
	s.validations = make(chan struct{}, MaxConcurrentValidations)
	return s
}

// Close ends every WatchEvents stream (before a graceful stop, which
// would otherwise wait for them). Safe to call more than once.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// GetStatus implements apiv1.MultihomedServer.
func (s *Server) GetStatus(ctx context.Context, _ *apiv1.GetStatusRequest) (*apiv1.GetStatusResponse, error) {
	cfg, _ := s.cfg.Current()
	st, now := s.ctl.Status(), s.now()
	probes := probeFigures{snap: st.Health, at: st.At}
	if s.health != nil {
		probes = probeFigures{snap: s.health.Snapshot(), at: now}
	}
	st = s.liveTranslation(ctx, st)
	return &apiv1.GetStatusResponse{Status: statusToProto(st, probes, cfg, now)}, nil
}

// ListEvents implements apiv1.MultihomedServer.
func (s *Server) ListEvents(ctx context.Context, req *apiv1.ListEventsRequest) (*apiv1.ListEventsResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = defaultPage
	}
	if limit > maxPage {
		return nil, statusOf(fmt.Errorf("%w: limit %d is above %d", ErrInvalidRequest, limit, maxPage))
	}
	evs := s.ctl.Events(req.GetAfter(), limit+1)
	resp := &apiv1.ListEventsResponse{NextAfter: req.GetAfter()}
	if len(evs) > limit {
		resp.More = true
		evs = evs[:limit]
	}
	for _, e := range evs {
		resp.Events = append(resp.Events, eventToProto(e))
		resp.NextAfter = e.Seq
	}
	return resp, nil
}

// Drain implements apiv1.MultihomedServer.
func (s *Server) Drain(ctx context.Context, req *apiv1.DrainRequest) (*apiv1.DrainResponse, error) {
	err := CheckUplink(req.GetUplink())
	var d time.Duration
	if err == nil {
		d, err = ParseDuration(req.GetDuration())
	}
	if err == nil {
		err = CheckReason(req.GetReason(), true)
	}
	if err != nil {
		return nil, statusOf(err)
	}
	who := identityOf(ctx).Name
	if err := s.ctl.Drain(ctx, req.GetUplink(), req.GetReason(), who, d); err != nil {
		return nil, statusOf(err)
	}
	return &apiv1.DrainResponse{Override: s.overrideOf(req.GetUplink())}, nil
}

// Undrain implements apiv1.MultihomedServer.
func (s *Server) Undrain(ctx context.Context, req *apiv1.UndrainRequest) (*apiv1.UndrainResponse, error) {
	if err := CheckUplink(req.GetUplink()); err != nil {
		return nil, statusOf(err)
	}
	ok, err := s.ctl.Undrain(ctx, req.GetUplink())
	if err != nil {
		return nil, statusOf(err)
	}
	return &apiv1.UndrainResponse{WasDrained: ok}, nil
}

// SetOverride implements apiv1.MultihomedServer.
func (s *Server) SetOverride(ctx context.Context, req *apiv1.SetOverrideRequest) (*apiv1.SetOverrideResponse, error) {
	if err := CheckOverride(req); err != nil {
		return nil, statusOf(err)
	}
	d, _ := ParseDuration(req.GetDuration())
	who := identityOf(ctx).Name
	var err error
	switch a := req.GetAction().(type) {
	case *apiv1.SetOverrideRequest_ForceDown:
		err = s.ctl.ForceDown(ctx, req.GetUplink(), req.GetReason(), who, d)
	case *apiv1.SetOverrideRequest_Prepend:
		err = s.ctl.Prepend(ctx, req.GetUplink(), uint8(a.Prepend.GetCount()), req.GetReason(), who, d)
	case *apiv1.SetOverrideRequest_Clear:
		err = s.ctl.ClearOverride(ctx, req.GetUplink())
	}
	if err != nil {
		return nil, statusOf(err)
	}
	return &apiv1.SetOverrideResponse{Override: s.overrideOf(req.GetUplink())}, nil
}

// ResetUplink implements apiv1.MultihomedServer.
func (s *Server) ResetUplink(ctx context.Context, req *apiv1.ResetUplinkRequest) (*apiv1.ResetUplinkResponse, error) {
	err := CheckUplink(req.GetUplink())
	if err == nil {
		err = CheckReason(req.GetReason(), false)
	}
	if err != nil {
		return nil, statusOf(err)
	}
	if err := s.ctl.ResetUplink(ctx, req.GetUplink(), identityOf(ctx).Name); err != nil {
		return nil, statusOf(err)
	}
	return &apiv1.ResetUplinkResponse{}, nil
}

// Shutdown implements apiv1.MultihomedServer: decommission, answer, then
// have the daemon exit. The answer goes out before the listeners close
// (the daemon's graceful stop waits for calls in flight).
func (s *Server) Shutdown(ctx context.Context, req *apiv1.ShutdownRequest) (*apiv1.ShutdownResponse, error) {
	if !req.GetWithdraw() {
		return nil, statusOf(wrapInvalid("withdraw is false: Shutdown only decommissions (withdraw everywhere, then exit); for a stop that keeps the site's routes at the ISPs, stop the service (SIGTERM)"))
	}
	if err := CheckReason(req.GetReason(), true); err != nil {
		return nil, statusOf(err)
	}
	if s.exit == nil {
		return nil, status.Error(codes.Unimplemented, "this daemon cannot be shut down over the API; use multihomed stop --withdraw or SIGUSR2 on the host")
	}
	who := identityOf(ctx).Name
	s.log.Warn("api: decommissioning: draining every uplink, then withdrawing everywhere and exiting", "who", who, "reason", req.GetReason())
	if err := s.ctl.Decommission(ctx, who); err != nil {
		return nil, statusOf(err)
	}
	s.exitOnce.Do(s.exit)
	return &apiv1.ShutdownResponse{}, nil
}

// ValidateConfig implements apiv1.MultihomedServer. Its cost is bounded:
// the text by MaxConfigLen, the calls at once by MaxConcurrentValidations,
// the answer by MaxProblems entries of at most MaxProblemLen bytes each.
// (The validation itself is config's: it must be linear in the text.)
func (s *Server) ValidateConfig(ctx context.Context, req *apiv1.ValidateConfigRequest) (*apiv1.ValidateConfigResponse, error) {
	if len(req.GetConfig()) > MaxConfigLen {
		return nil, statusOf(fmt.Errorf("%w: config is %d bytes; the limit is %d", ErrInvalidRequest, len(req.GetConfig()), MaxConfigLen))
	}
	select {
	case s.validations <- struct{}{}:
		defer func() { <-s.validations }()
	default:
		return nil, status.Errorf(codes.ResourceExhausted, "%d configuration validations are already running; retry in a moment", MaxConcurrentValidations)
	}
	advice, err := s.cfg.Validate([]byte(req.GetConfig()))
	if err == nil {
		return &apiv1.ValidateConfigResponse{Valid: true, Advice: boundedProblems(advice)}, nil
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		return nil, statusOf(err)
	}
	return &apiv1.ValidateConfigResponse{Problems: boundedProblems(ce.Problems)}, nil
}

// boundedProblems converts at most MaxProblems problems, each cut to
// MaxProblemLen, and says how many more there were.
func boundedProblems(ps []config.Problem) []*apiv1.Problem {
	n := min(len(ps), MaxProblems)
	out := make([]*apiv1.Problem, 0, n+1)
	for _, p := range ps[:n] {
		out = append(out, &apiv1.Problem{Path: truncate(p.Path, MaxProblemLen), Message: truncate(p.Message, MaxProblemLen)})
	}
	if more := len(ps) - n; more > 0 {
		out = append(out, &apiv1.Problem{Message: fmt.Sprintf("and %d more (fix the above and validate again)", more)})
	}
	return out
}

// ReloadConfig implements apiv1.MultihomedServer.
func (s *Server) ReloadConfig(ctx context.Context, _ *apiv1.ReloadConfigRequest) (*apiv1.ReloadConfigResponse, error) {
	warnings, err := s.cfg.Reload(ctx)
	if err != nil {
		return nil, statusOf(err)
	}
	_, file := s.cfg.Current()
	return &apiv1.ReloadConfigResponse{File: file, Warnings: warnings}, nil
}

// GetConfig implements apiv1.MultihomedServer.
func (s *Server) GetConfig(ctx context.Context, _ *apiv1.GetConfigRequest) (*apiv1.GetConfigResponse, error) {
	cfg, file := s.cfg.Current()
	// config.Secret marshals as "[redacted]": no secret leaves here.
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, statusOf(fmt.Errorf("api: encode config: %w", err))
	}
	return &apiv1.GetConfigResponse{Json: string(data), File: file}, nil
}

func (s *Server) overrideOf(uplink string) *apiv1.Override {
	if o, ok := s.ctl.Status().Overrides[uplink]; ok {
		return overrideToProto(o)
	}
	return nil
}

// overrideKind names o's kind, as the API and the metrics' kind label do.
func overrideKind(o controller.Override) string {
	switch {
	case o.ForceDown:
		return "force-down"
	case o.ExtraPrepend > 0:
		return "prepend"
	}
	return "drain"
}

// ParseDuration checks an optional request duration: unset or zero means
// no expiry; negative, out-of-range or above MaxOverrideDuration is an
// ErrInvalidRequest.
func ParseDuration(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fmt.Errorf("%w: duration: %v", ErrInvalidRequest, err)
	}
	v := d.AsDuration()
	switch {
	case v < 0:
		return 0, fmt.Errorf("%w: duration %s is negative; give a positive one, or none for no expiry", ErrInvalidRequest, v)
	case v > MaxOverrideDuration:
		return 0, fmt.Errorf("%w: duration %s is above the maximum %s; give a shorter one, or none for no expiry", ErrInvalidRequest, v, MaxOverrideDuration)
	}
	return v, nil
}

// CheckReason checks a reason: required when required, at most
// MaxReasonLen bytes of printable UTF-8 (it goes into logs and the state
// file).
func CheckReason(r string, required bool) error {
	switch {
	case required && r == "":
		return fmt.Errorf("%w: reason is missing; say why (it is logged and shown in status)", ErrInvalidRequest)
	case len(r) > MaxReasonLen:
		return fmt.Errorf("%w: reason is %d bytes; keep it under %d", ErrInvalidRequest, len(r), MaxReasonLen)
	case !utf8.ValidString(r):
		return fmt.Errorf("%w: reason is not valid UTF-8", ErrInvalidRequest)
	}
	for _, c := range r {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("%w: reason contains the control character %U; use printable text", ErrInvalidRequest, c)
		}
	}
	return nil
}

var uplinkNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)

// CheckUplink checks that name can be an uplink name (config's rule);
// whether it is configured is the controller's call.
func CheckUplink(name string) error {
	if name == "" {
		return fmt.Errorf("%w: uplink is missing; name a configured uplink", ErrInvalidRequest)
	}
	if !uplinkNameRe.MatchString(name) {
		return fmt.Errorf("%w: uplink %.40q is not an uplink name (lowercase letters, digits, '-')", ErrInvalidRequest, name)
	}
	return nil
}

// CheckOverride checks a SetOverride request before anything is applied.
func CheckOverride(req *apiv1.SetOverrideRequest) error {
	if err := CheckUplink(req.GetUplink()); err != nil {
		return err
	}
	if _, err := ParseDuration(req.GetDuration()); err != nil {
		return err
	}
	switch a := req.GetAction().(type) {
	case *apiv1.SetOverrideRequest_ForceDown:
		return CheckReason(req.GetReason(), true)
	case *apiv1.SetOverrideRequest_Prepend:
		if n := a.Prepend.GetCount(); n < 1 || n > config.MaxPrepend {
			return fmt.Errorf("%w: prepend count %d is out of range 1-%d", ErrInvalidRequest, n, config.MaxPrepend)
		}
		return CheckReason(req.GetReason(), true)
	case *apiv1.SetOverrideRequest_Clear:
		if req.GetDuration() != nil {
			return fmt.Errorf("%w: clear takes no duration", ErrInvalidRequest)
		}
		return CheckReason(req.GetReason(), false)
	}
	return fmt.Errorf("%w: action is missing; set force_down, prepend or clear", ErrInvalidRequest)
}

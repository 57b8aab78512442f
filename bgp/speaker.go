package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/multihomed/multihomed/routing"

	"github.com/google/uuid"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/multihomed/multihomed/config"
)

// Log attribute keys.
const (
	keyUplink = "uplink"
	keyPeer   = "peer"
	keyPrefix = "prefix"
	keyState  = "state"
)

// Options tune a Speaker beyond what the configuration says.
type Options struct {
	// Logger receives the speaker's logs and GoBGP's; nil means slog.Default.
	Logger *slog.Logger
	// PeerPort is the TCP port dialled on every neighbor; 0 means 179. Tests
	// use it to run several speakers on one host.
	PeerPort uint32
}

// Speaker is the site's BGP speaker. Its methods are safe for concurrent
// use; writes are serialised.
type Speaker struct {
	log  *slog.Logger
	opts Options
	srv  *server.BgpServer

	serveDone   chan struct{}
	watchCancel context.CancelFunc

	// opMu serialises Start, SetAnnouncements, Reconfigure and Stop.
	opMu     sync.Mutex
	cfg      *config.Config
	anns     map[string][]routing.Announcement // installed, normalized
	defLP    uint32                            // LOCAL_PREF of the default sent to iBGP peers; 0: none
	paths    map[netip.Prefix]uuid.UUID        // locally originated paths
	sessions map[netip.Addr]sessionConfig      // installed peers

	// stateMu guards states; the GoBGP watch callback writes it.
	stateMu sync.Mutex
	states  map[netip.Addr]routing.SessionState

	changed chan struct{}
}

// New returns a speaker that is not running yet.
func New(opts Options) *Speaker {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PeerPort == 0 {
		opts.PeerPort = 179
	}
	return &Speaker{
		log:      opts.Logger,
		opts:     opts,
		anns:     map[string][]routing.Announcement{},
		paths:    map[netip.Prefix]uuid.UUID{},
		sessions: map[netip.Addr]sessionConfig{},
		states:   map[netip.Addr]routing.SessionState{},
		changed:  make(chan struct{}, 1),
	}
}

// Start runs the embedded GoBGP server with cfg's sessions and policies. No
// prefix is announced until SetAnnouncements. Start must be called once.
func (s *Speaker) Start(ctx context.Context, cfg *config.Config) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv != nil {
		return errors.New("bgp: speaker already started")
	}
	// GoBGP is chatty at info (every peer FSM step); our own logs say what
	// matters, so its records below warn are dropped.
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	gobgpLog := slog.New(minLevelHandler{min: lvl, Handler: s.log.Handler()}).With("component", "gobgp")
	s.srv = server.NewBgpServer(server.LoggerOption(gobgpLog, lvl))
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		s.srv.Serve()
	}()
	// No gRPC listener is ever started: GoBGP's has no authentication.
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        cfg.Node.ASN,
		RouterId:   cfg.Node.RouterID.String(),
		ListenPort: cfg.BGP.ListenPort,
	}}); err != nil {
		s.stopLocked(ctx)
		return fmt.Errorf("bgp: start: %w", err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.watchCancel = cancel
	if err := s.srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.onPeer}, server.WatchPeer()); err != nil {
		s.stopLocked(ctx)
		return fmt.Errorf("bgp: watch peers: %w", err)
	}
	s.cfg = cfg
	// StartBgp initialises policy: install ours after it and before any
	// peer, with REJECT defaults both ways.
	if err := s.srv.SetPolicies(ctx, buildPolicies(policyInput{cfg: cfg, anns: s.anns, defaultLP: s.defLP})); err != nil {
		s.stopLocked(ctx)
		return fmt.Errorf("bgp: install policies: %w", err)
	}
	for dir, name := range map[api.PolicyDirection]string{
		api.PolicyDirection_POLICY_DIRECTION_IMPORT: policyImport,
		api.PolicyDirection_POLICY_DIRECTION_EXPORT: policyExport,
	} {
		if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name:          "global",
			Direction:     dir,
			Policies:      []*api.Policy{{Name: name}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		}}); err != nil {
			s.stopLocked(ctx)
			return fmt.Errorf("bgp: assign %s policy: %w", name, err)
		}
	}
	for _, sc := range sessionConfigs(cfg) {
		if err := s.addPeer(ctx, sc); err != nil {
			s.stopLocked(ctx)
			return err
		}
	}
	return nil
}

// Stop tears the sessions down and stops the server. It returns once GoBGP's
// goroutines are gone.
func (s *Speaker) Stop(ctx context.Context) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.stopLocked(ctx)
}

func (s *Speaker) stopLocked(ctx context.Context) {
	if s.srv == nil {
		return
	}
	// Cancel the watch before stopping: its goroutine would otherwise wait on
	// a server that is gone.
	if s.watchCancel != nil {
		s.watchCancel()
	}
	// Stop (not StopBgp) also ends GoBGP's BFD goroutine.
	s.srv.Stop()
	<-s.serveDone
	s.srv = nil
}

// minLevelHandler drops records below min.
type minLevelHandler struct {
	min slog.Leveler
	slog.Handler
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.Handler.Enabled(ctx, l)
}

func (h minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevelHandler{h.min, h.Handler.WithAttrs(as)}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{h.min, h.Handler.WithGroup(name)}
}

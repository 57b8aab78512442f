package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/multihomed/multihomed/routing"

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
	// FirstAnnounceWait bounds how long Start holds the sessions back
	// waiting for the first SetAnnouncements; 0 means
	// DefaultFirstAnnounceWait, and more than MaxFirstAnnounceWait is cut
	// to it.
	FirstAnnounceWait time.Duration
	// OnBest, if set, receives every change of the best path to a prefix
	// with the uplink it now comes from (bgp.install feeds the kernel from
	// it). It runs on a GoBGP watch goroutine, in order: hand off without
	// blocking.
	OnBest func([]BestRoute)
	// OnBestSnapshot, if set, receives the whole best-path table after
	// ReplayBest (every prefix that has a best path, with its uplink or
	// ""), on the same goroutine and in order with OnBest: what was
	// made of earlier deliveries can be replaced by it.
	OnBestSnapshot func([]BestRoute)
}

// Bounds of Options.FirstAnnounceWait.
const (
	DefaultFirstAnnounceWait = 5 * time.Second
	// MaxFirstAnnounceWait is above the longest controller.startup_wait
	// (config.MaxStartupWait): the daemon holds the sessions back for its
	// startup wait and a margin.
	MaxFirstAnnounceWait = 6 * time.Minute
)

// Speaker is the site's BGP speaker. Its methods are safe for concurrent
// use; writes are serialised.
type Speaker struct {
	log  *slog.Logger
	opts Options
	srv  *server.BgpServer

	serveDone   chan struct{}
	watchCancel context.CancelFunc
	watchCtx    context.Context // the watches' context (under opMu)
	// bestMu orders the best-path watch's deliveries against ReplayBest:
	// a delivery of a watch older than bestGen is dropped. bestCancel
	// stops the current best-path watch (under opMu).
	bestMu     sync.Mutex
	bestGen    uint64
	bestCancel context.CancelFunc
	// gobgpLevel is the minimum level of GoBGP's own records.
	gobgpLevel *slog.LevelVar

	// opMu serialises Start, SetAnnouncements, Reconfigure and Stop.
	opMu  sync.Mutex
	cfg   *config.Config
	anns  map[string][]routing.Announcement // installed, normalized
	defLP uint32                            // LOCAL_PREF of the default sent to iBGP peers; 0: none
	// orig is what each locally originated path carries, marks the
	// slots whose marks the paths carry (exportmarks.go), installed the
	// policies GoBGP has (nil: unknown).
	orig      map[netip.Prefix]origination
	marks     markTable
	installed *api.SetPoliciesRequest
	// inPlaceMax is inPlaceMaxRoutes; tests set it to choose the way.
	inPlaceMax uint64
	// insideLP is the LOCAL_PREF of each import: full uplink's routes
	// toward the core (inside.go); inResetDue the sessions whose inbound
	// soft reset for it failed, retried by the next SetInsideLocalPrefs.
	insideLP   map[string]uint32
	inResetDue map[netip.Addr]bool
	// resetDue holds the sessions whose outbound soft reset failed: the
	// policies already say what they must hear, so the next apply resets
	// them again even when nothing else changed.
	resetDue map[netip.Addr]bool
	sessions map[netip.Addr]sessionConfig // installed peers
	site     siteOrigin                   // site-state routes (sitestate.go)
	// peerConfs is what each installed peer was added with, for the one
	// UpdatePeer that closes it at max-prefix (prefixcount.go).
	peerConfs map[netip.Addr]*api.Peer
	// pending holds the sessions of Start until the first SetAnnouncements
	// or FirstAnnounceWait (whichever comes first) adds them; nil after.
	pending      []sessionConfig
	pendingTimer *time.Timer

	// stateMu guards states; the GoBGP watch callback writes it.
	stateMu sync.Mutex
	states  map[netip.Addr]routing.SessionState
	limits  map[netip.Addr]*prefixLimit
	// bulk is the state of full tables' initial transfers (bulkimport.go);
	// nil while stopped.
	bulk *bulkImport
	// recountQueued is the bulkImport whose reload recount
	// (recountAfterReload) waits for b.mu, and recountRunning is set while
	// one runs: the counts are the old rules' until it is done. Under
	// stateMu.
	recountQueued  *bulkImport
	recountRunning bool

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
	if opts.FirstAnnounceWait <= 0 {
		opts.FirstAnnounceWait = DefaultFirstAnnounceWait
	}
	opts.FirstAnnounceWait = min(opts.FirstAnnounceWait, MaxFirstAnnounceWait)
	return &Speaker{
		log:        opts.Logger,
		opts:       opts,
		anns:       map[string][]routing.Announcement{},
		orig:       map[netip.Prefix]origination{},
		inPlaceMax: inPlaceMaxRoutes,
		resetDue:   map[netip.Addr]bool{},
		inResetDue: map[netip.Addr]bool{},
		sessions:   map[netip.Addr]sessionConfig{},
		states:     map[netip.Addr]routing.SessionState{},
		limits:     map[netip.Addr]*prefixLimit{},
		changed:    make(chan struct{}, 1),
		peerConfs:  map[netip.Addr]*api.Peer{},
	}
}

// Start runs the embedded GoBGP server with cfg's policies. It opens no
// session yet: the first SetAnnouncements does, or FirstAnnounceWait after
// Start if none came, so that no peer sees End-of-RIB before the site's
// prefixes (DESIGN.md section 10). Start must be called once.
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
	s.gobgpLevel = lvl
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
	s.watchCancel, s.watchCtx = cancel, wctx
	if err := s.srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.onPeer}, server.WatchPeer()); err != nil {
		s.stopLocked(ctx)
		return fmt.Errorf("bgp: watch peers: %w", err)
	}
	b := newBulkImport(s.srv, wctx)
	b.mu.Lock()
	err := s.startCountWatch(b)
	b.mu.Unlock()
	if err != nil {
		s.stopLocked(ctx)
		return fmt.Errorf("bgp: watch updates: %w", err)
	}
	s.stateMu.Lock()
	s.bulk = b
	s.stateMu.Unlock()
	if err := s.srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPathEor: s.onEor}, server.WatchEor(false)); err != nil {
		s.stopLocked(ctx)
		return fmt.Errorf("bgp: watch End-of-RIB: %w", err)
	}
	if s.opts.OnBest != nil {
		if err := s.startBestWatchLocked(false); err != nil {
			s.stopLocked(ctx)
			return fmt.Errorf("bgp: watch best paths: %w", err)
		}
	}
	s.cfg = cfg
	// StartBgp initialises policy: install ours after it and before any
	// peer, with REJECT defaults both ways.
	s.installed = nil
	if err := s.setPoliciesLocked(ctx, s.exportStateLocked()); err != nil {
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
	// No peer yet: a peer added now would get End-of-RIB with nothing in
	// it, and an ISP that kept the site's routes stale across our restart
	// flushes them on End-of-RIB (RFC 4724 section 4.2). The first
	// SetAnnouncements adds the peers; the timer bounds the wait for a
	// controller that never calls it.
	s.setPendingLocked(sessionConfigs(cfg))
	srv := s.srv
	s.pendingTimer = time.AfterFunc(s.opts.FirstAnnounceWait, func() {
		s.opMu.Lock()
		defer s.opMu.Unlock()
		if s.srv != srv || s.pending == nil {
			return // stopped, or SetAnnouncements came first
		}
		s.log.Warn("bgp: no announcements yet; opening the sessions anyway", "waited", s.opts.FirstAnnounceWait)
		if err := s.addPendingLocked(context.Background()); err != nil {
			s.log.Error("bgp: open sessions", "err", err)
		}
	})
	return nil
}

// setPendingLocked makes pending the sessions to open, listed as idle in
// Sessions meanwhile.
func (s *Speaker) setPendingLocked(pending []sessionConfig) {
	s.pending = pending
	if s.pending == nil {
		s.pending = []sessionConfig{}
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	clear(s.states)
	for _, sc := range pending {
		s.states[sc.neighborAddr] = idleState(sc)
	}
}

// addPendingLocked opens the sessions held back since Start.
func (s *Speaker) addPendingLocked(ctx context.Context) error {
	if s.pending == nil {
		return nil
	}
	pending := s.pending
	s.pending = nil
	if s.pendingTimer != nil {
		s.pendingTimer.Stop()
	}
	var errs []error
	for _, sc := range pending {
		if err := s.addPeer(ctx, sc, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop closes every session and stops the server; it returns once GoBGP's
// goroutines are gone.
//
// Stop is a restart, not a withdrawal (DESIGN.md section 10): where graceful
// restart was negotiated the TCP connection is closed without a Cease, so
// the peer keeps our routes as stale for bgp.restart_time (RFC 4724 section
// 4.2) and the next Start picks them up without a gap. A Cease would make
// every ISP withdraw the site at once. Peers that did not negotiate graceful
// restart get the usual Cease (peer de-configured). To withdraw for good,
// call SetAnnouncements with nothing first.
func (s *Speaker) Stop(ctx context.Context) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	s.stopLocked(ctx)
}

func (s *Speaker) stopLocked(ctx context.Context) {
	if s.srv == nil {
		return
	}
	if s.pendingTimer != nil {
		s.pendingTimer.Stop()
	}
	s.pending = nil
	s.stateMu.Lock()
	s.stopHoldTimersLocked()
	s.bulk = nil
	s.stateMu.Unlock()
	// Cancel the watch before stopping: its goroutine would otherwise wait on
	// a server that is gone.
	if s.watchCancel != nil {
		s.watchCancel()
	}
	s.watchCtx, s.bestCancel = nil, nil
	// StopBgp with AllowGracefulRestart is the only GoBGP call that closes a
	// session without a NOTIFICATION: DeletePeer and plain Stop send Cease
	// "peer de-configured", which RFC 8538 even maps to Hard Reset (the peer
	// flushes our routes).
	if err := s.srv.StopBgp(ctx, &api.StopBgpRequest{AllowGracefulRestart: true}); err != nil {
		s.log.Warn("bgp: graceful stop failed; stopping anyway", "err", err)
	}
	// Stop (not StopBgp alone) also ends GoBGP's BFD goroutine. It repeats
	// StopBgp, which now finds nothing to stop and logs its refusal at error
	// level: nothing GoBGP says from here on is news.
	s.gobgpLevel.Set(slog.LevelError + 4)
	s.srv.Stop()
	<-s.serveDone
	s.srv = nil
	s.orig, s.marks, s.installed = map[netip.Prefix]origination{}, markTable{}, nil
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

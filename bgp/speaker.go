package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/multihomed/multihomed/routing"

	"github.com/google/uuid"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
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
	site     siteOrigin                        // site-state routes (sitestate.go)

	// stateMu guards states; the GoBGP watch callback writes it.
	stateMu sync.Mutex
	states  map[netip.Addr]routing.SessionState

	changed chan struct{}
}

// sessionConfig is what a session was added with; a change resets it.
type sessionConfig struct {
	uplink       string
	internal     bool
	peerASN      uint32
	local        netip.Addr
	password     string
	hold, keep   time.Duration
	retry        time.Duration
	ttlSecurity  bool
	maxPrefixes  uint32
	gr           bool
	restart      time.Duration
	neighborAddr netip.Addr
	passive      bool // wait for the peer to connect (edgepeers.go)
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

// Changed is signalled (level-triggered: bursts merge) whenever a session
// changes state, or an internal peer's routes change (SiteView, in
// sitestate.go). Read Sessions for the current states.
func (s *Speaker) Changed() <-chan struct{} { return s.changed }

// Sessions returns the state of every configured session, ordered by uplink
// then neighbor.
func (s *Speaker) Sessions() []routing.SessionState {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	out := slices.Collect(maps.Values(s.states))
	sort.Slice(out, func(i, j int) bool {
		if out[i].Uplink != out[j].Uplink {
			return out[i].Uplink < out[j].Uplink
		}
		return out[i].Neighbor.Less(out[j].Neighbor)
	})
	return out
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
	if err := s.watchSite(wctx, cfg); err != nil { // sitestate.go
		s.stopLocked(ctx)
		return err
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

// onPeer runs on GoBGP's goroutine: it records the state and signals
// without blocking.
func (s *Speaker) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE && ev.Type != apiutil.PEER_EVENT_INIT {
		return
	}
	addr := ev.Peer.Conf.NeighborAddress
	state := fsmName(ev.Peer.State.SessionState)
	s.stateMu.Lock()
	old, known := s.states[addr]
	if !known {
		s.stateMu.Unlock()
		return // a peer we have since deleted
	}
	if old.State == state {
		s.stateMu.Unlock()
		return
	}
	st := old
	st.State, st.Since = state, at
	if msg := ev.Peer.State.DisconnectMessage; msg != "" {
		st.LastError = msg
	} else if ev.Peer.State.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
		st.LastError = ev.Peer.State.DisconnectReason.String()
	}
	s.states[addr] = st
	s.stateMu.Unlock()
	if state == "established" || old.State == "established" {
		s.log.Info("bgp session state", keyUplink, st.Uplink, keyPeer, addr, keyState, state, "from", old.State, "reason", st.LastError)
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func fsmName(st bgp.FSMState) string {
	switch st {
	case bgp.BGP_FSM_IDLE:
		return "idle"
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return "unknown"
}

func sessionConfigs(cfg *config.Config) []sessionConfig {
	var out []sessionConfig
	for _, u := range cfg.Uplinks {
		for _, sess := range u.BGP.Sessions() {
			out = append(out, sessionConfig{
				uplink: u.Name, peerASN: u.BGP.PeerASN, local: sess.Local, neighborAddr: sess.Neighbor,
				password: u.BGP.Password.Reveal(), hold: u.BGP.HoldTime, keep: u.BGP.Keepalive,
				retry: u.BGP.ConnectRetry, ttlSecurity: u.BGP.TTLSecurity, maxPrefixes: u.BGP.MaxPrefixes,
				gr: cfg.BGP.GracefulRestart, restart: cfg.BGP.RestartTime,
			})
		}
	}
	for _, p := range cfg.IBGP.Peers {
		out = append(out, sessionConfig{
			internal: true, peerASN: cfg.Node.ASN, local: p.LocalAddress, neighborAddr: p.Neighbor,
			password: p.Password.Reveal(), hold: p.HoldTime, keep: p.HoldTime / 3, retry: p.ConnectRetry,
			maxPrefixes: ibgpMaxPrefixes(p), passive: ibgpPassive(p), gr: cfg.BGP.GracefulRestart, restart: cfg.BGP.RestartTime,
		})
	}
	return out
}

// DefaultIBGPMaxPrefixes limits what an internal router may send us: we
// accept nothing from it, but a runaway peer must not fill memory.
const DefaultIBGPMaxPrefixes = 10000

func (s *Speaker) addPeer(ctx context.Context, sc sessionConfig) error {
	fam := familyV6
	if sc.neighborAddr.Is4() {
		fam = familyV4
	}
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: sc.neighborAddr.String(),
			PeerAsn:         sc.peerASN,
			AuthPassword:    sc.password,
			Description:     peerDescription(sc),
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      uint64(sc.retry / time.Second),
			HoldTime:          uint64(sc.hold / time.Second),
			KeepaliveInterval: uint64(sc.keep / time.Second),
			// After our own reset (ResetUplink), retry as soon as a normal
			// connection attempt would, not after GoBGP's 30 s default.
			IdleHoldTimeAfterReset: uint64(max(sc.retry/time.Second, 1)),
		}},
		Transport: &api.Transport{RemotePort: s.opts.PeerPort, PassiveMode: sc.passive},
		AfiSafis: []*api.AfiSafi{{
			Config:       &api.AfiSafiConfig{Family: fam, Enabled: true},
			PrefixLimits: &api.PrefixLimit{Family: fam, MaxPrefixes: sc.maxPrefixes, ShutdownThresholdPct: 80},
			MpGracefulRestart: &api.MpGracefulRestart{
				Config: &api.MpGracefulRestartConfig{Enabled: sc.gr},
			},
		}},
	}
	if sc.local.IsValid() {
		p.Transport.LocalAddress = sc.local.String()
	}
	if sc.ttlSecurity {
		// RFC 5082: a directly connected peer's packets arrive with TTL 255.
		p.TtlSecurity = &api.TtlSecurity{Enabled: true, TtlMin: 255}
	}
	if sc.gr {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(sc.restart / time.Second)}
	}
	s.stateMu.Lock()
	s.states[sc.neighborAddr] = routing.SessionState{Uplink: sc.uplink, Internal: sc.internal, Neighbor: sc.neighborAddr, State: "idle", Since: time.Now()}
	s.stateMu.Unlock()
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		s.stateMu.Lock()
		delete(s.states, sc.neighborAddr)
		s.stateMu.Unlock()
		return fmt.Errorf("bgp: add peer %s (uplink %s): %w", sc.neighborAddr, sc.uplink, err)
	}
	s.sessions[sc.neighborAddr] = sc
	return nil
}

func (s *Speaker) deletePeer(ctx context.Context, addr netip.Addr) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("bgp: delete peer %s: %w", addr, err)
	}
	delete(s.sessions, addr)
	s.stateMu.Lock()
	delete(s.states, addr)
	s.stateMu.Unlock()
	return nil
}

// SetAnnouncements makes each uplink announce exactly anns[uplink]: a site
// prefix left out is withdrawn from that uplink only, an uplink left out
// announces nothing. Prefixes that are not site prefixes are refused (named
// in the error) and the rest applied. It is idempotent: a call with what is
// already announced changes nothing on the wire. It returns the
// announcements in force when it returns.
func (s *Speaker) SetAnnouncements(ctx context.Context, anns map[string][]routing.Announcement) (map[string][]routing.Announcement, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return nil, errors.New("bgp: speaker not started")
	}
	var errs []error
	want := map[string][]routing.Announcement{}
	for uplink, list := range anns {
		if !s.hasUplink(uplink) {
			errs = append(errs, fmt.Errorf("bgp: uplink %q is not configured; nothing announced to it", uplink))
			continue
		}
		for _, a := range list {
			if !slices.Contains(s.cfg.Site.Prefixes, a.Prefix) {
				errs = append(errs, fmt.Errorf("bgp: %s is not a site prefix; refused for uplink %s", a.Prefix, uplink))
			}
		}
		if n := normalize(list, s.cfg.Site.Prefixes); len(n) > 0 {
			want[uplink] = n
		}
	}
	if err := s.applyLocked(ctx, want, false, false); err != nil {
		errs = append(errs, err)
	}
	return cloneAnns(s.anns), errors.Join(errs...)
}

func (s *Speaker) hasUplink(name string) bool {
	return slices.ContainsFunc(s.cfg.Uplinks, func(u config.Uplink) bool { return u.Name == name })
}

// applyLocked installs want: originates new prefixes, replaces policies,
// soft-resets outbound the sessions whose announcements changed (forceAll:
// every session, for a new config), then stops originating prefixes nobody
// announces. Adds happen before deletes.
func (s *Speaker) applyLocked(ctx context.Context, want map[string][]routing.Announcement, forceAll, internalChanged bool) error {
	changedUplinks := map[string]bool{}
	for _, u := range s.cfg.Uplinks {
		if forceAll || !annsEqual(s.anns[u.Name], want[u.Name]) {
			changedUplinks[u.Name] = true
		}
	}
	if len(changedUplinks) == 0 && !internalChanged && !forceAll {
		return nil
	}
	needed := map[netip.Prefix]bool{}
	for _, list := range want {
		for _, a := range list {
			needed[a.Prefix] = true
		}
	}
	if s.defLP > 0 {
		needed[netip.MustParsePrefix("::/0")] = true
		needed[netip.MustParsePrefix("0.0.0.0/0")] = true
	}
	for _, p := range sortedPrefixes(needed) {
		if _, ok := s.paths[p]; ok {
			continue
		}
		id, err := s.originate(p)
		if err != nil {
			return err
		}
		s.paths[p] = id
	}
	if err := s.srv.SetPolicies(ctx, buildPolicies(policyInput{cfg: s.cfg, anns: want, defaultLP: s.defLP})); err != nil {
		return fmt.Errorf("bgp: replace policies: %w", err)
	}
	s.anns = want
	var errs []error
	for addr, sc := range s.sessions {
		if sc.internal && !internalChanged && !forceAll {
			continue
		}
		if !sc.internal && !changedUplinks[sc.uplink] {
			continue
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: soft reset out %s: %w", addr, err))
		}
	}
	for p, id := range s.paths {
		if needed[p] {
			continue
		}
		// Always name the path: DeletePath with neither path nor UUID
		// deletes every locally originated path.
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{UUIDs: []uuid.UUID{id}}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: stop originating %s: %w", p, err))
			continue
		}
		delete(s.paths, p)
	}
	return errors.Join(errs...)
}

// originate adds the locally originated path for p with an unspecified next
// hop, so GoBGP sends its own address to each eBGP peer (next-hop-self).
func (s *Speaker) originate(p netip.Prefix) (uuid.UUID, error) {
	nlri, err := bgp.NewIPAddrPrefix(p)
	if err != nil {
		return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := bgp.RF_IPv4_UC
	if p.Addr().Is6() {
		fam = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
		}
		attrs = append(attrs, mp)
	} else {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
		}
		attrs = append(attrs, nh)
	}
	res, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: fam, Nlri: nlri, Attrs: attrs}}})
	if err != nil {
		return uuid.Nil, fmt.Errorf("bgp: originate %s: %w", p, err)
	}
	if len(res) != 1 || res[0].Error != nil {
		return uuid.Nil, fmt.Errorf("bgp: originate %s: %v", p, res)
	}
	s.log.Debug("originating", keyPrefix, p)
	return res[0].UUID, nil
}

// Reconfigure moves the running speaker to cfg. Sessions whose own settings
// are unchanged are not reset: policy and attribute changes are applied with
// route refresh / soft reset. Sessions whose settings changed are re-created;
// removed ones are closed. Changing node.asn, node.router_id or
// bgp.listen_port needs a restart and is refused, leaving everything as it
// was. The caller then calls SetAnnouncements for the new attributes.
func (s *Speaker) Reconfigure(ctx context.Context, cfg *config.Config) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: speaker not started")
	}
	old := s.cfg
	switch {
	case cfg.Node.ASN != old.Node.ASN:
		return fmt.Errorf("bgp: node.asn changed from %d to %d: restart the daemon to apply", old.Node.ASN, cfg.Node.ASN)
	case cfg.Node.RouterID != old.Node.RouterID:
		return fmt.Errorf("bgp: node.router_id changed from %s to %s: restart the daemon to apply", old.Node.RouterID, cfg.Node.RouterID)
	case cfg.BGP.ListenPort != old.BGP.ListenPort:
		return fmt.Errorf("bgp: bgp.listen_port changed from %d to %d: restart the daemon to apply", old.BGP.ListenPort, cfg.BGP.ListenPort)
	}
	var errs []error
	wantSessions := map[netip.Addr]sessionConfig{}
	for _, sc := range sessionConfigs(cfg) {
		wantSessions[sc.neighborAddr] = sc
	}
	// Close removed and changed sessions first: their neighbor sets are about
	// to change.
	for addr, have := range s.sessions {
		if want, ok := wantSessions[addr]; !ok || want != have {
			s.log.Info("bgp session removed or changed; closing it", keyUplink, have.uplink, keyPeer, addr)
			if err := s.deletePeer(ctx, addr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.cfg = cfg
	// Keep what is announced, minus what the new config no longer allows.
	kept := map[string][]routing.Announcement{}
	for uplink, list := range s.anns {
		if s.hasUplink(uplink) {
			if n := normalize(list, cfg.Site.Prefixes); len(n) > 0 {
				kept[uplink] = n
			}
		}
	}
	if err := s.applyLocked(ctx, kept, true, true); err != nil {
		errs = append(errs, err)
	}
	// Import filters may have changed: re-run import policy over what each
	// unchanged session already sent (route refresh is not needed: GoBGP
	// keeps Adj-RIB-In).
	for addr := range s.sessions {
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: soft reset in %s: %w", addr, err))
		}
	}
	for addr, sc := range wantSessions {
		if _, ok := s.sessions[addr]; ok {
			continue
		}
		if err := s.addPeer(ctx, sc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Announced returns the announcements in force, per uplink.
func (s *Speaker) Announced() map[string][]routing.Announcement {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	return cloneAnns(s.anns)
}

func annsEqual(a, b []routing.Announcement) bool {
	return slices.EqualFunc(a, b, routing.Announcement.Equal)
}

func cloneAnns(m map[string][]routing.Announcement) map[string][]routing.Announcement {
	out := make(map[string][]routing.Announcement, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

func sortedPrefixes(set map[netip.Prefix]bool) []netip.Prefix {
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, comparePrefix)
	return out
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

// Learned returns, per uplink, the prefixes its sessions sent that passed
// import policy, sorted.
func (s *Speaker) Learned() (map[string][]netip.Prefix, error) {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return nil, errors.New("bgp: speaker not started")
	}
	out := map[string][]netip.Prefix{}
	for _, fam := range []bgp.Family{bgp.RF_IPv6_UC, bgp.RF_IPv4_UC} {
		err := s.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam}, func(nlri bgp.NLRI, paths []*apiutil.Path) {
			p, err := netip.ParsePrefix(nlri.String())
			if err != nil {
				return
			}
			for _, path := range paths {
				if sc, ok := s.sessions[path.PeerAddress]; ok && !path.Filtered {
					out[sc.uplink] = append(out[sc.uplink], p)
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("bgp: list %s routes: %w", fam, err)
		}
	}
	for _, ps := range out {
		slices.SortFunc(ps, comparePrefix)
	}
	return out, nil
}

func peerDescription(sc sessionConfig) string {
	if sc.internal {
		return "internal"
	}
	return sc.uplink
}

// SetInternalDefault makes the speaker originate ::/0 and 0.0.0.0/0 to the
// internal (iBGP) peers with LOCAL_PREF localPref, or withdraw them with 0.
// Nothing learned from an ISP is sent to internal peers. Idempotent.
func (s *Speaker) SetInternalDefault(ctx context.Context, localPref uint32) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: speaker not started")
	}
	if len(s.cfg.IBGP.Peers) == 0 {
		localPref = 0
	}
	if localPref == s.defLP {
		return nil
	}
	old := s.defLP
	s.defLP = localPref
	if err := s.applyLocked(ctx, s.anns, false, true); err != nil {
		s.defLP = old
		return err
	}
	return nil
}

// ResetUplink closes the uplink's sessions at once (a BGP NOTIFICATION,
// cease/administrative reset, where the link still carries it) and lets
// them reconnect after connect_retry. The controller calls it on carrier
// loss: the session is dead anyway, and waiting for the hold timer would
// only delay its return once the link is back.
func (s *Speaker) ResetUplink(ctx context.Context, uplink, reason string) error {
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: speaker not started")
	}
	var errs []error
	for addr, sc := range s.sessions {
		if sc.internal || sc.uplink != uplink {
			continue
		}
		if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Communication: reason}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: reset %s (uplink %s): %w", addr, uplink, err))
		}
	}
	return errors.Join(errs...)
}

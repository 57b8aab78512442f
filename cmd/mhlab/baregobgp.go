package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/multihomed/multihomed/internal/gcpace"
)

// runBareGoBGP is `mhlab bare-gobgp`, which `mhlab bench fulltable` runs
// in the receiver namespace as a receiver of its own: GoBGP v4.8.0, the
// version multihomed embeds, with nothing of multihomed's around it (no
// policy, no update watch, no counting; only a watch of peer states and one
// of End-of-RIB), its garbage collector paced as multihomed paces it for
// full tables. What multihomed takes beyond it is what multihomed adds.
//
// It writes its progress into the --status file, replacing it each time:
// "up" once a session is established, then "routes N" once every neighbor
// has sent End-of-RIB for its family, N being the paths in its RIB (both
// families; one count, after the last End-of-RIB).
func runBareGoBGP(args []string) error {
	fs := flag.NewFlagSet("mhlab bare-gobgp", flag.ExitOnError)
	asn := fs.Uint("asn", 0, "our AS number")
	routerID := fs.String("router-id", "", "our router ID (an IPv4 address)")
	listen := fs.String("listen", "", "comma-separated addresses to listen on (port 179)")
	status := fs.String("status", "", "file to write the progress into")
	var neighbors []bareNeighbor
	fs.Func("neighbor", "a neighbor, ASN@ADDRESS (repeat the flag for more)", func(s string) error {
		n, err := parseBareNeighbor(s)
		if err == nil {
			neighbors = append(neighbors, n)
		}
		return err
	})
	_ = fs.Parse(args)
	if *asn == 0 || *routerID == "" || *status == "" || len(neighbors) == 0 {
		return errors.New("bare-gobgp: --asn, --router-id, --status and at least one --neighbor are required")
	}
	if p, err := gcpace.Start(gcpace.FullTables); err == nil {
		defer p.Stop()
	} else if !errors.Is(err, gcpace.ErrOperatorSet) {
		return fmt.Errorf("bare-gobgp: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := server.NewBgpServer(server.LoggerOption(log, &slog.LevelVar{}))
	go srv.Serve()
	defer srv.Stop()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: uint32(*asn), RouterId: *routerID, ListenPort: 179, ListenAddresses: splitList(*listen),
	}}); err != nil {
		return fmt.Errorf("bare-gobgp: start: %w", err)
	}
	w := &bareStatus{path: *status, srv: srv, pending: map[netip.Addr]bool{}}
	for _, n := range neighbors {
		w.pending[n.addr] = true
	}
	if err := srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: w.onPeer}, server.WatchPeer()); err != nil {
		return fmt.Errorf("bare-gobgp: watch peers: %w", err)
	}
	if err := srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPathEor: w.onEor}, server.WatchEor(false)); err != nil {
		return fmt.Errorf("bare-gobgp: watch End-of-RIB: %w", err)
	}
	for _, n := range neighbors {
		fam := &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
		if n.addr.Is4() {
			fam.Afi = api.Family_AFI_IP
		}
		// Graceful restart as multihomed offers it: a peer sends
		// End-of-RIB only to a speaker that has the capability.
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:            &api.PeerConf{NeighborAddress: n.addr.String(), PeerAsn: n.asn},
			Timers:          &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1}},
			GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 120},
			AfiSafis: []*api.AfiSafi{{
				Config:            &api.AfiSafiConfig{Family: fam, Enabled: true},
				MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
			}},
		}}); err != nil {
			return fmt.Errorf("bare-gobgp: add neighbor %s: %w", n.addr, err)
		}
	}
	<-ctx.Done()
	return nil
}

// bareNeighbor is one --neighbor of bare-gobgp.
type bareNeighbor struct {
	asn  uint32
	addr netip.Addr
}

// parseBareNeighbor reads ASN@ADDRESS.
func parseBareNeighbor(s string) (bareNeighbor, error) {
	a, b, ok := strings.Cut(s, "@")
	asn, err := strconv.ParseUint(a, 10, 32)
	if !ok || err != nil || asn == 0 {
		return bareNeighbor{}, fmt.Errorf("--neighbor %q: want ASN@ADDRESS, such as 64510@198.51.100.1", s)
	}
	addr, err := netip.ParseAddr(b)
	if err != nil {
		return bareNeighbor{}, fmt.Errorf("--neighbor %q: %w", s, err)
	}
	return bareNeighbor{asn: uint32(asn), addr: addr}, nil
}

// bareStatus writes bare-gobgp's progress.
type bareStatus struct {
	path string
	srv  *server.BgpServer
	mu   sync.Mutex
	up   bool
	// pending are the neighbors whose End-of-RIB has not come yet.
	pending map[netip.Addr]bool
}

func (w *bareStatus) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Peer.State.SessionState != bgp.BGP_FSM_ESTABLISHED {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.up {
		w.up = true
		w.write("up")
	}
}

func (w *bareStatus) onEor(p *apiutil.Path, _ time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.pending[p.PeerAddress] {
		return
	}
	delete(w.pending, p.PeerAddress)
	if len(w.pending) > 0 {
		return
	}
	var routes uint64
	for _, afi := range []api.Family_Afi{api.Family_AFI_IP6, api.Family_AFI_IP} {
		r, err := w.srv.GetTable(context.Background(), &api.GetTableRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}})
		if err != nil {
			w.write("error " + err.Error())
			return
		}
		routes += r.NumPath
	}
	w.write(fmt.Sprintf("routes %d", routes))
}

// write replaces the status file with line (a temporary file renamed, so
// that a reader never sees half of it).
func (w *bareStatus) write(line string) {
	tmp := w.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(line+"\n"), 0o644); err == nil {
		_ = os.Rename(tmp, w.path)
	}
}

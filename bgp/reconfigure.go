package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/multihomed/multihomed/routing"

	api "github.com/osrg/gobgp/v4/api"
	"google.golang.org/protobuf/proto"

	"github.com/multihomed/multihomed/config"
)

// Reconfigure moves the running speaker to cfg. Sessions whose own settings
// are unchanged are not reset: attribute changes go out as announcement
// changes do (exportmarks.go), an import policy change with an inbound
// soft reset. Sessions whose settings changed are re-created;
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
	if s.pending != nil {
		// Sessions not opened yet: open the new set when they are due.
		s.setPendingLocked(sessionConfigs(cfg))
	}
	var errs []error
	wantSessions := map[netip.Addr]sessionConfig{}
	for _, sc := range sessionConfigs(cfg) {
		wantSessions[sc.neighborAddr] = sc
	}
	// Close removed and changed sessions first: their neighbor sets are about
	// to change.
	for addr, have := range s.sessions {
		if want, ok := wantSessions[addr]; !ok || !sameSession(want, have) {
			s.log.Info("bgp session removed or changed; closing it", keyUplink, have.uplink, keyPeer, addr)
			if err := s.deletePeer(ctx, addr); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.cfg = cfg
	// Kept sessions take the new max_prefix_restart without a reset; a
	// running hold-down keeps the retry time it announced.
	s.stateMu.Lock()
	for addr, have := range s.sessions {
		want, ok := wantSessions[addr]
		if !ok || !sameSession(want, have) {
			// Its close above failed: it keeps the configuration it runs
			// with, so the next reconfiguration still sees the difference
			// and tries again.
			continue
		}
		s.sessions[addr] = want
		if lim := s.limits[addr]; lim != nil {
			lim.restart = want.maxPrefixRestart
		}
	}
	// GoBGP's import policy is global: every session left counts with the
	// new one.
	for addr, sc := range s.sessions {
		if lim := s.limits[addr]; lim != nil {
			lim.filter = newImportFilter(cfg, sc)
		}
	}
	s.stateMu.Unlock()
	// Keep what is announced, minus what the new config no longer allows.
	kept := map[string][]routing.Announcement{}
	for uplink, list := range s.anns {
		if s.hasUplink(uplink) {
			if n := normalize(list, cfg.Site.Prefixes); len(n) > 0 {
				kept[uplink] = n
			}
		}
	}
	if !advertiseFull(old) {
		// Turning ibgp.advertise: full on starts from nothing to the core:
		// every learned route marked until the controller's first
		// preferences (SetInsideLocalPrefs).
		s.insideLP = nil
	}
	// Where the import policy changed, re-run it over what each unchanged
	// session already sent, before the outbound resets (applyLocked).
	// Otherwise leave the table alone: with full tables a soft reset in
	// walks every route the ISP sent.
	// The announcements reach the ISPs as changed paths (exportmarks.go):
	// no outbound reset of their sessions. Internal peers are reset only
	// where what they are sent of the learned routes changed.
	reimport := importChanged(old, cfg)
	if err := s.applyLocked(ctx, kept, internalExportChanged(old, cfg), reimport); err != nil {
		errs = append(errs, err)
	}
	if reimport {
		// One recount waiting is enough for any number of reloads: it
		// reads the rules in force when it runs.
		s.stateMu.Lock()
		b := s.bulk
		start := b != nil && s.recountQueued != b
		if start {
			s.recountQueued = b
		}
		if b != nil {
			for _, lim := range s.limits {
				lim.counts.markStale() // counted by the old rules
			}
		}
		s.stateMu.Unlock()
		if start {
			go s.recountAfterReload(b)
		}
	}
	for addr, sc := range wantSessions {
		if _, ok := s.sessions[addr]; ok || s.pending != nil {
			continue
		}
		if err := s.addPeer(ctx, sc, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sameSession reports whether a and b need no session reset to go from one
// to the other.
func sameSession(a, b sessionConfig) bool {
	a.maxPrefixRestart, b.maxPrefixRestart = 0, 0
	return a == b
}

// importChanged reports whether the import policy of cfg differs from that
// of old: the import statements and the defined sets they read.
func importChanged(old, cfg *config.Config) bool {
	a := buildPolicies(policyInput{cfg: old})
	b := buildPolicies(policyInput{cfg: cfg})
	if len(a.DefinedSets) != len(b.DefinedSets) {
		return true
	}
	for i := range a.DefinedSets {
		if !proto.Equal(a.DefinedSets[i], b.DefinedSets[i]) {
			return true
		}
	}
	return !proto.Equal(findPolicy(a, policyImport), findPolicy(b, policyImport))
}

// internalExportChanged reports whether the export of cfg sends the
// internal peers other learned routes than that of old (ibgp.advertise, the
// core and edge peers): the export statements that are not built from
// marks, and the defined sets they read.
func internalExportChanged(old, cfg *config.Config) bool {
	a, b := internalExport(old), internalExport(cfg)
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return true
		}
	}
	return false
}

// internalExport lists the export statements of cfg without marks, each
// followed by the defined sets its conditions name.
func internalExport(cfg *config.Config) []proto.Message {
	req := buildPolicies(policyInput{cfg: cfg})
	sets := map[string]*api.DefinedSet{}
	for _, ds := range req.DefinedSets {
		sets[ds.Name] = ds
	}
	var out []proto.Message
	for _, st := range findPolicy(req, policyExport).GetStatements() {
		out = append(out, st)
		c := st.GetConditions()
		for _, m := range []*api.MatchSet{c.GetNeighborSet(), c.GetPrefixSet(), c.GetCommunitySet(), c.GetLargeCommunitySet(), c.GetAsPathSet(), c.GetExtCommunitySet()} {
			if ds := sets[m.GetName()]; ds != nil {
				out = append(out, ds)
			}
		}
	}
	return out
}

func findPolicy(req *api.SetPoliciesRequest, name string) *api.Policy {
	for _, p := range req.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

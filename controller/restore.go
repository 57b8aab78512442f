package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/routing"
)

// decisionFile keeps the last applied decision, so that a restarted daemon
// announces it before its sessions send End-of-RIB (graceful restart:
// the ISPs keep our stale routes only until then).
const decisionFile = "decision.json"

// Restored is one uplink's part of the decision a previous run applied,
// validated against the configuration in force.
type Restored struct {
	// Announcements is what the uplink's ISP heard, only of prefixes the
	// configuration still has.
	Announcements []routing.Announcement
	// Egress and EgressTier are the uplink's egress as it was.
	Egress     bool
	EgressTier int
	// InsideLocalPref is the uplink's Decision.InsideLocalPref as it was
	// (ibgp.advertise: full); nil when the file has none (written before
	// it was kept, or without advertise: full) or the value is not on the
	// configuration's ladder: then it is computed from the restored egress
	// as on a pass. Egress alone cannot tell it: in ECMP mode a degraded
	// uplink carries no egress but keeps its routes at the core.
	InsideLocalPref *uint32
}

// savedDecision is the file's form. Communities are numbers: routing's
// community types write text but do not read it back.
type savedDecision struct {
	Uplinks map[string]savedUplink `json:"uplinks"`
}

type savedUplink struct {
	Announcements []savedAnnouncement `json:"announcements,omitempty"`
	Egress        bool                `json:"egress"`
	EgressTier    int                 `json:"egress_tier"`
	// InsideLocalPref is written only with ibgp.advertise: full.
	InsideLocalPref *uint32 `json:"inside_local_pref,omitempty"`
}

type savedAnnouncement struct {
	Prefix           netip.Prefix `json:"prefix"`
	Prepend          uint8        `json:"prepend,omitempty"`
	Communities      []uint32     `json:"communities,omitempty"`
	LargeCommunities [][3]uint32  `json:"large_communities,omitempty"`
	MED              *uint32      `json:"med,omitempty"`
	GracefulShutdown bool         `json:"graceful_shutdown,omitempty"`
}

// encodeDecision renders the announcements and egress of d for the file.
func encodeDecision(d Desired) ([]byte, error) {
	s := savedDecision{Uplinks: map[string]savedUplink{}}
	for _, u := range d.Uplinks {
		su := savedUplink{Egress: u.Egress, EgressTier: u.EgressTier}
		if d.InsideAdvertise {
			su.InsideLocalPref = &u.InsideLocalPref
		}
		for _, a := range u.Announcements {
			sa := savedAnnouncement{Prefix: a.Prefix, Prepend: a.Prepend, MED: a.MED, GracefulShutdown: a.GracefulShutdown}
			for _, c := range a.Communities {
				sa.Communities = append(sa.Communities, uint32(c))
			}
			for _, lc := range a.LargeCommunities {
				sa.LargeCommunities = append(sa.LargeCommunities, [3]uint32{lc.Global, lc.Local1, lc.Local2})
			}
			su.Announcements = append(su.Announcements, sa)
		}
		s.Uplinks[u.Uplink] = su
	}
	return json.MarshalIndent(s, "", "  ")
}

// loadDecision reads the decision a previous run saved in dir and keeps
// what cfg still allows (restoredFor). A missing file is os.ErrNotExist; a
// corrupt one an error naming the file.
func loadDecision(dir string, cfg *config.Config) (map[string]Restored, error) {
	path := filepath.Join(dir, decisionFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseDecision(path, data, cfg)
}

// parseDecision is loadDecision after the read: data is the content of
// the file at path.
func parseDecision(path string, data []byte, cfg *config.Config) (map[string]Restored, error) {
	var s savedDecision
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("controller: %s is not a saved decision (%v)", path, err)
	}
	out := map[string]Restored{}
	for name, su := range s.Uplinks {
		r := Restored{Egress: su.Egress, EgressTier: su.EgressTier, InsideLocalPref: su.InsideLocalPref}
		for _, sa := range su.Announcements {
			a := routing.Announcement{Prefix: sa.Prefix, Prepend: sa.Prepend, MED: sa.MED, GracefulShutdown: sa.GracefulShutdown}
			for _, c := range sa.Communities {
				a.Communities = append(a.Communities, routing.Community(c))
			}
			for _, lc := range sa.LargeCommunities {
				a.LargeCommunities = append(a.LargeCommunities, routing.LargeCommunity{Global: lc[0], Local1: lc[1], Local2: lc[2]})
			}
			r.Announcements = append(r.Announcements, a)
		}
		out[name] = r
	}
	return restoredFor(cfg, out), nil
}

// restoredFor keeps of m what cfg allows: uplinks it has, prefixes of
// site.prefixes, prepends up to the cap, egress tiers that exist, inside
// preferences on the ladder (0, local_pref_up or local_pref_degraded) of
// an uplink that still sends its full routes to the core. Used at
// load and again at every reload while a restored decision stands, so a
// prefix or uplink the configuration no longer has is never announced.
func restoredFor(cfg *config.Config, m map[string]Restored) map[string]Restored {
	out := map[string]Restored{}
	for name, r := range m {
		if _, ok := uplinkConfig(cfg, name); !ok {
			continue
		}
		keep := Restored{Egress: r.Egress && r.EgressTier >= TierUp && r.EgressTier <= TierLast}
		if keep.Egress {
			keep.EgressTier = r.EgressTier
		}
		if lp := r.InsideLocalPref; lp != nil && insideLocalPref(cfg, Decision{Uplink: name, Egress: true}, false) > 0 &&
			(*lp == 0 || *lp == cfg.IBGP.LocalPrefUp || *lp == cfg.IBGP.LocalPrefDegraded) {
			v := *lp
			keep.InsideLocalPref = &v
		}
		for _, a := range r.Announcements {
			if slices.Contains(cfg.Site.Prefixes, a.Prefix) {
				a.Prepend = min(a.Prepend, config.MaxPrepend)
				keep.Announcements = append(keep.Announcements, a)
			}
		}
		if len(keep.Announcements) > 0 || keep.Egress {
			out[name] = keep
		}
	}
	return out
}

// restoreDecision loads the previous run's decision for the first passes.
// Without a usable file the daemon starts as on its first run (nothing
// announced until the first verdicts or the startup wait's end), and the
// log says why.
func (l *Loop) restoreDecision() {
	dir := l.cfg.Controller.StateDir
	r, err := loadDecision(dir, l.cfg)
	switch {
	case errors.Is(err, os.ErrNotExist):
		l.log.Info("no saved decision to restore (first start); nothing is announced until the first health verdicts", "file", filepath.Join(dir, decisionFile))
	case err != nil:
		l.log.Warn("saved decision not restored; nothing is announced until the first health verdicts", "error", err)
	case len(r) == 0:
		l.log.Info("saved decision restores nothing the configuration still has", "file", filepath.Join(dir, decisionFile))
	default:
		for name, u := range r {
			l.log.Info("decision restored until the first health verdicts", "uplink", name, "prefixes", len(u.Announcements), "egress", u.Egress, "egress_tier", u.EgressTier)
		}
		l.restored = r
	}
}

// saveDecision keeps d for the next start when it differs from what is
// saved. Problems are logged: a restart without the file starts as a first
// start would.
func (l *Loop) saveDecision(d Desired) {
	data, err := encodeDecision(d)
	if err == nil && bytes.Equal(data, l.savedDecision) {
		return
	}
	if err == nil {
		err = writeState(l.cfg.Controller.StateDir, decisionFile, data)
	}
	if err != nil {
		if !l.decisionSaveFailed { // once per run of failures
			l.log.Warn("decision not saved; a restart announces nothing until the first health verdicts", "error", err)
		}
		l.decisionSaveFailed, l.savedDecision = true, nil
		return
	}
	l.decisionSaveFailed, l.savedDecision = false, data
}

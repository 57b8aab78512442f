package controller

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/config"
)

// The state directory is read back at every start: a file cut short by a
// full disk, edited by hand or written by another version is input from
// outside. Whatever it holds, loading it must not panic, must fail with
// an error that names the file, or must give only what the configuration
// in force allows.

// The fuzz targets call the parsers loadDecision and loadOverrides hand the
// file's content to; their tests cover the reads.

// FuzzLoadDecision: a saved decision restores only uplinks and prefixes the
// configuration has, prepends up to config.MaxPrepend, egress tiers that
// exist and inside preferences on the configuration's ladder.
func FuzzLoadDecision(f *testing.F) {
	cfg := testConfig(f)
	good, err := encodeDecision(Decide(cfg, obsAllUp(t0.Add(time.Minute))))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"uplinks": {"isp-a": {"announcements": [{"prefix": "2001:db8:face::/48", "prepend": 200}], "egress": true, "egress_tier": 9, "inside_local_pref": 7}}}`))
	f.Add([]byte(`{"uplinks": {"isp-z": {"announcements": [{"prefix": "2001:db8:bad::/48"}], "egress": true, "egress_tier": 0}}}`))
	f.Add([]byte(`{"uplinks": {"isp-a": {"announcements": [{"prefix": "not a prefix"}]}}}`))
	f.Add([]byte(`{"uplinks": {"isp-a": [`))
	f.Add([]byte(`{"uplinks": null, "extra": 1}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseDecision(filepath.Join("/state", decisionFile), data, cfg)
		if err != nil {
			if !strings.Contains(err.Error(), decisionFile) {
				t.Fatalf("error %q does not name %s", err, decisionFile)
			}
			return
		}
		ladder := []uint32{0, cfg.IBGP.LocalPrefUp, cfg.IBGP.LocalPrefDegraded}
		for name, r := range got {
			if _, ok := uplinkConfig(cfg, name); !ok {
				t.Fatalf("restored uplink %q the configuration does not have", name)
			}
			if r.Egress && (r.EgressTier < TierUp || r.EgressTier > TierLast) {
				t.Fatalf("%s: restored egress tier %d, outside %d-%d", name, r.EgressTier, TierUp, TierLast)
			}
			if lp := r.InsideLocalPref; lp != nil && !slices.Contains(ladder, *lp) {
				t.Fatalf("%s: restored inside LOCAL_PREF %d, not on the ladder %v", name, *lp, ladder)
			}
			for _, a := range r.Announcements {
				if !slices.Contains(cfg.Site.Prefixes, a.Prefix) {
					t.Fatalf("%s: restored announcement of %s, not a site prefix", name, a.Prefix)
				}
				if a.Prepend > config.MaxPrepend {
					t.Fatalf("%s: restored prepend %d, above %d", name, a.Prepend, config.MaxPrepend)
				}
			}
		}
	})
}

// FuzzLoadOverrides: saved overrides come back in force only, with an
// extra prepend of at most config.MaxPrepend, or as an error naming the
// file.
func FuzzLoadOverrides(f *testing.F) {
	f.Add([]byte(`{"isp-a": {"Drain": true, "Reason": "maintenance", "Who": "ops", "Since": "2026-11-26T12:00:00Z"}}`))
	f.Add([]byte(`{"isp-a": {"ExtraPrepend": 250, "Expires": "2099-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"isp-a": {"ForceDown": true, "Expires": "2000-01-01T00:00:00Z"}}`))
	f.Add([]byte(`{"isp-a": {"ExtraPrepend": 256}}`))
	f.Add([]byte(`{"isp-a": {"Since": "yesterday"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseOverrides(filepath.Join("/state", overridesFile), data, t0)
		if err != nil {
			if !strings.Contains(err.Error(), overridesFile) {
				t.Fatalf("error %q does not name %s", err, overridesFile)
			}
			return
		}
		if got == nil {
			t.Fatal("no error and a nil map")
		}
		for name, o := range got {
			if !o.Active(t0) {
				t.Fatalf("%s: override %+v restored though not in force", name, o)
			}
			if o.ExtraPrepend > config.MaxPrepend {
				t.Fatalf("%s: extra prepend %d restored, above %d", name, o.ExtraPrepend, config.MaxPrepend)
			}
		}
	})
}

package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/multihomed/multihomed/config"
)

// overridesFile is the name of the overrides file in the state directory.
const overridesFile = "overrides.json"

// loadOverrides reads the overrides saved in dir, dropping expired ones and
// capping an extra prepend at config.MaxPrepend, as the API does (a file
// edited by hand could hold more, and prepends add up in a uint8). A
// missing file is no overrides; a corrupt one is an error that names the
// file (it is left in place for the operator to inspect).
func loadOverrides(dir string, now time.Time) (map[string]Override, error) {
	path := filepath.Join(dir, overridesFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Override{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("controller: read overrides: %w", err)
	}
	return parseOverrides(path, data, now)
}

// parseOverrides is loadOverrides after the read: data is the content of
// the file at path.
func parseOverrides(path string, data []byte, now time.Time) (map[string]Override, error) {
	var m map[string]Override
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("controller: %s is not valid JSON (%v); fix or remove it", path, err)
	}
	for k, o := range m {
		if !o.Active(now) {
			delete(m, k)
			continue
		}
		if o.ExtraPrepend > config.MaxPrepend {
			o.ExtraPrepend = config.MaxPrepend
			m[k] = o
		}
	}
	if m == nil {
		m = map[string]Override{}
	}
	return m, nil
}

// overridesFor returns the overrides of m whose uplink cfg has.
func overridesFor(cfg *config.Config, m map[string]Override) map[string]Override {
	out := make(map[string]Override, len(m))
	for k, o := range m {
		if _, ok := uplinkConfig(cfg, k); ok {
			out[k] = o
		}
	}
	return out
}

// restoreOverrides loads the saved overrides at start and drops, with a log
// line each, those of uplinks the configuration no longer has; the file is
// rewritten then so that it matches memory.
func (l *Loop) restoreOverrides() error {
	ov, err := loadOverrides(l.cfg.Controller.StateDir, l.started)
	if err != nil {
		return err
	}
	kept := overridesFor(l.cfg, ov)
	for name, o := range ov {
		if _, ok := kept[name]; !ok {
			l.log.Warn("override dropped: no such uplink in the configuration", "uplink", name, "force_down", o.ForceDown, "drain", o.Drain, "reason", o.Reason)
			continue
		}
		l.log.Info("override restored", "uplink", name, "drain", o.Drain, "force_down", o.ForceDown, "prepend", o.ExtraPrepend, "reason", o.Reason)
	}
	if len(kept) != len(ov) {
		if err := saveOverrides(l.cfg.Controller.StateDir, kept); err != nil {
			return err
		}
	}
	l.overrides = kept
	return nil
}

// saveOverrides writes the overrides atomically (writeState).
func saveOverrides(dir string, m map[string]Override) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("controller: encode overrides: %w", err)
	}
	if err := writeState(dir, overridesFile, data); err != nil {
		return fmt.Errorf("controller: save overrides: %w", err)
	}
	return nil
}

// writeState writes name in the state directory atomically: a temporary
// file in the same directory, synced, then renamed over the old one, so a
// crash leaves either the old or the new content, never a torn file.
func writeState(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// egressFile remembers the egress table and protocol in force, so that a
// daemon started with other ones removes what the previous run left.
const egressFile = "egress.json"

type egressState struct {
	Table    int `json:"table"`
	Protocol int `json:"protocol"`
}

// retirePreviousEgress tells the egress applier about the routes a
// previous run left under another table or protocol, then records the
// current ones. Problems are logged: egress works without this file.
func (l *Loop) retirePreviousEgress() {
	dir := l.cfg.Controller.StateDir
	cur := egressState{l.cfg.Egress.Table, l.cfg.Egress.Protocol}
	if data, err := os.ReadFile(filepath.Join(dir, egressFile)); err == nil {
		var prev egressState
		if err := json.Unmarshal(data, &prev); err != nil {
			l.log.Warn("egress state unreadable; ignoring it", "file", filepath.Join(dir, egressFile), "error", err)
		} else if prev != cur && l.deps.Egress != nil {
			if err := l.deps.Egress.Retire(prev.Table, prev.Protocol); err != nil {
				l.log.Warn("egress: cannot retire the previous run's routes", "table", prev.Table, "protocol", prev.Protocol, "error", err)
			} else {
				l.log.Info("egress: the previous run used another table or protocol; its defaults go once ours are in place", "table", prev.Table, "protocol", prev.Protocol)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		l.log.Warn("egress state unreadable; ignoring it", "error", err)
	}
	l.saveEgress()
}

// saveEgress records the egress table and protocol in force.
func (l *Loop) saveEgress() {
	data, _ := json.Marshal(egressState{l.cfg.Egress.Table, l.cfg.Egress.Protocol})
	if err := writeState(l.cfg.Controller.StateDir, egressFile, data); err != nil {
		l.log.Warn("egress state not saved; after a restart with another egress.table or egress.protocol the old routes stay", "error", err)
	}
}

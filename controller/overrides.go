package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// overridesFile is the name of the overrides file in the state directory.
const overridesFile = "overrides.json"

// loadOverrides reads the overrides saved in dir, dropping expired ones. A
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
	var m map[string]Override
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("controller: %s is not valid JSON (%v); fix or remove it", path, err)
	}
	for k, o := range m {
		if !o.Active(now) {
			delete(m, k)
		}
	}
	if m == nil {
		m = map[string]Override{}
	}
	return m, nil
}

// saveOverrides writes the overrides atomically: a temporary file in the
// same directory, synced, then renamed over the old one, so a crash leaves
// either the old or the new set, never a torn file.
func saveOverrides(dir string, m map[string]Override) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("controller: state dir: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("controller: encode overrides: %w", err)
	}
	tmp, err := os.CreateTemp(dir, overridesFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("controller: save overrides: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("controller: save overrides: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("controller: save overrides: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("controller: save overrides: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, overridesFile)); err != nil {
		return fmt.Errorf("controller: save overrides: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

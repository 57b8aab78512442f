package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/internal/buildinfo"
)

// TestVersionCommand runs `mhctl version` without a daemon: it prints its
// own build and exits 0.
func TestVersionCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"version", "--socket", t.TempDir() + "/none.sock"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.String() != buildinfo.Read().String() {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), buildinfo.Read())
	}
	if !strings.Contains(out.String(), "go:         go1.") {
		t.Errorf("no Go version in %q", out.String())
	}
}

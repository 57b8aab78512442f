package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenMan writes mhctl's man pages (section 1) without a daemon.
func TestGenMan(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"gen-man", dir}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	drain, err := os.ReadFile(filepath.Join(dir, "mhctl-drain.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(drain), `\fB--reason\fP`) {
		t.Errorf("mhctl-drain.1 lacks --reason:\n%s", drain)
	}
}

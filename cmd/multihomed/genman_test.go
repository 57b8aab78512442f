package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenMan writes the man pages and finds one per visible command, with
// its flags, and none for the hidden generator itself.
func TestGenMan(t *testing.T) {
	dir := t.TempDir()
	root := newRootCmd()
	root.SetArgs([]string{"gen-man", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	run, err := os.ReadFile(filepath.Join(dir, "multihomed-run.8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(run), `\fB--config\fP`) || !strings.Contains(string(run), ".TH \"MULTIHOMED-RUN\" \"8\"") {
		t.Errorf("multihomed-run.8 lacks --config or the section 8 header:\n%s", run)
	}
	for _, page := range []string{"multihomed.8", "multihomed-version.8", "multihomed-config-validate.8"} {
		if _, err := os.Stat(filepath.Join(dir, page)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "multihomed-gen-man.8")); err == nil {
		t.Error("a page for the hidden gen-man command")
	}
}

package config

import (
	"os"
	"strings"
	"testing"
)

// edit replaces the first old in text with new and fails the test when old
// is not there: a test that edits a configuration to provoke a problem must
// not pass because its edit silently matched nothing.
func edit(t testing.TB, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("test broken: %q is not in the configuration being edited", old)
	}
	return strings.Replace(text, old, new, 1)
}

// validYAML returns testdata/valid.yaml.
func validYAML(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

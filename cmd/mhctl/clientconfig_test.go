package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multihomed/multihomed/internal/buildinfo"
)

func TestClientConfigPaths(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"HOME": "/home/alice"}, []string{"/home/alice/.config/mhctl.yaml", "/etc/multihomed/mhctl.yaml"}},
		{map[string]string{"HOME": "/home/alice", "XDG_CONFIG_HOME": "/cfg"}, []string{"/cfg/mhctl.yaml", "/etc/multihomed/mhctl.yaml"}},
		{map[string]string{}, []string{"/etc/multihomed/mhctl.yaml"}},
	} {
		if d := cmp.Diff(tc.want, clientConfigPaths(env(tc.env))); d != "" {
			t.Errorf("env %v (-want +got):\n%s", tc.env, d)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadClientConfig(t *testing.T) {
	dir := t.TempDir()
	user, machine := filepath.Join(dir, "user", "mhctl.yaml"), filepath.Join(dir, "etc", "mhctl.yaml")
	write(t, machine, "socket: /run/other.sock\n")

	// Only the machine's file: it is used.
	c, from, err := loadClientConfig([]string{user, machine}, "/home/alice")
	if err != nil || from != machine || c.Socket != "/run/other.sock" {
		t.Fatalf("machine file: %+v from %q, %v", c, from, err)
	}

	// The user's file wins whole (no merge); paths resolve.
	write(t, user, "address: edge1.example:9443\ncacert: ca.pem\ncert: ~/.config/mhctl/alice.pem\nkey: /keys/alice.key\nserver_name: edge1.example\n")
	c, from, err = loadClientConfig([]string{user, machine}, "/home/alice")
	if err != nil || from != user {
		t.Fatalf("user file: from %q, %v", from, err)
	}
	want := clientConfig{Address: "edge1.example:9443", CACert: filepath.Join(dir, "user", "ca.pem"),
		Cert: "/home/alice/.config/mhctl/alice.pem", Key: "/keys/alice.key", ServerName: "edge1.example"}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}

	// None: zero config, no error.
	c, from, err = loadClientConfig([]string{filepath.Join(dir, "none.yaml")}, "")
	if err != nil || from != "" || c != (clientConfig{}) {
		t.Errorf("no file: %+v from %q, %v", c, from, err)
	}

	// An empty file is an empty config.
	empty := filepath.Join(dir, "empty.yaml")
	write(t, empty, "# nothing yet\n")
	if _, _, err := loadClientConfig([]string{empty}, ""); err != nil {
		t.Errorf("empty file: %v", err)
	}

	// A typo is an error naming the file and the key.
	write(t, user, "adress: edge1.example:9443\n")
	_, _, err = loadClientConfig([]string{user, machine}, "")
	if err == nil || !strings.Contains(err.Error(), user) || !strings.Contains(err.Error(), "adress") {
		t.Errorf("unknown key: %v", err)
	}
}

// TestClientConfigDefaultsAndFlags runs mhctl: the file's socket is used,
// a --socket flag wins over it, and a broken file does not stop version.
func TestClientConfigDefaultsAndFlags(t *testing.T) {
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	fromFile := filepath.Join(t.TempDir(), "from-file.sock")
	write(t, filepath.Join(cfgHome, "mhctl.yaml"), "socket: "+fromFile+"\n")

	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"status"}, &out, &errb); code != exitUnreachable || !strings.Contains(errb.String(), fromFile) {
		t.Errorf("status with the file: exit %d, %q; want exit %d naming %s", code, errb.String(), exitUnreachable, fromFile)
	}
	fromFlag := filepath.Join(t.TempDir(), "from-flag.sock")
	errb.Reset()
	if code := run(t.Context(), []string{"status", "--socket", fromFlag}, &out, &errb); code != exitUnreachable || !strings.Contains(errb.String(), fromFlag) {
		t.Errorf("status --socket: exit %d, %q; want exit %d naming %s", code, errb.String(), exitUnreachable, fromFlag)
	}

	write(t, filepath.Join(cfgHome, "mhctl.yaml"), "sockett: x\n")
	errb.Reset()
	if code := run(t.Context(), []string{"status"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "sockett") {
		t.Errorf("broken file: exit %d, %q; want exit %d naming the key", code, errb.String(), exitUsage)
	}
	// version still prints mhctl's own build; the daemon was not asked.
	out.Reset()
	if code := run(t.Context(), []string{"version"}, &out, &errb); code != exitUsage || !strings.HasPrefix(out.String(), buildinfo.Read().String()) ||
		!strings.Contains(out.String(), "daemon:     not asked: ") || !strings.Contains(out.String(), "sockett") {
		t.Errorf("version with a broken client file: exit %d, output %q; want exit %d, mhctl's build and the daemon not asked, naming the key", code, out.String(), exitUsage)
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// production is base in the production profile, with prefixes that are not
// documentation space.
func production(t *testing.T) string {
	return edit(t, edit(t, base, "profile: lab", "profile: production"), "2001:db8:face::/48", "2a0e:1000::/48")
}

func withPasswordFile(t *testing.T, text, file string) string {
	return edit(t, text, "peer_asn: 64502,", "peer_asn: 64502, password_file: '"+file+"',")
}

func keyFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(f, []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return f
}

func TestSecretFileModes(t *testing.T) {
	const path = "uplinks[1].bgp.password_file"
	for _, tc := range []struct {
		name    string
		mode    os.FileMode
		prod    bool
		problem string // "" = accepted
		advice  string // with an accepted file
	}{
		{"owner only", 0o600, true, "", ""},
		{"group-readable", 0o640, true, "", ""},
		{"group-writable", 0o620, false, "group- or world-writable (mode 0620), so others could change the key; chmod 0600", ""},
		{"world-writable", 0o602, false, "group- or world-writable (mode 0602)", ""},
		{"world-readable, production", 0o644, true, "world-readable (mode 0644): every local user can read the key; chmod 0600", ""},
		{"world-readable, lab", 0o644, false, "", "world-readable (mode 0644): every local user can read the key; chmod 0600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := keyFile(t, tc.mode)
			text := base
			if tc.prod {
				text = production(t)
			}
			cfg, err := Parse("t", []byte(withPasswordFile(t, text, f)), nil)
			if tc.problem != "" {
				assertProblem(t, err, path, tc.problem)
				assertProblem(t, err, path, "chmod 0600 "+f)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Uplinks[1].BGP.Password.Reveal(); got != "k3y" {
				t.Fatalf("password = %q; want k3y", got)
			}
			var advised []string
			for _, p := range Advice(cfg) {
				if p.Path == path {
					advised = append(advised, p.Message)
				}
			}
			if tc.advice == "" && len(advised) > 0 || tc.advice != "" && (len(advised) != 1 || !strings.Contains(advised[0], tc.advice)) {
				t.Fatalf("advice on %s = %q; want %q", path, advised, tc.advice)
			}
		})
	}
}

func TestSecretFileSymlink(t *testing.T) {
	f := keyFile(t, 0o600)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(f, link); err != nil {
		t.Fatal(err)
	}
	_, err := Parse("t", []byte(withPasswordFile(t, base, link)), nil)
	assertProblem(t, err, "uplinks[1].bgp.password_file", "is a symbolic link; name the file itself")
}

func TestSecretFileDevice(t *testing.T) {
	_, err := Parse("t", []byte(withPasswordFile(t, base, "/dev/null")), nil)
	assertProblem(t, err, "uplinks[1].bgp.password_file", "not a regular file")
}

// TestSecretFileFIFO: a FIFO with no writer blocked a plain open forever.
func TestSecretFileFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("t", []byte(withPasswordFile(t, base, fifo)), nil)
		done <- err
	}()
	select {
	case err := <-done:
		assertProblem(t, err, "uplinks[1].bgp.password_file", "not a regular file")
	case <-time.After(10 * time.Second):
		t.Fatal("Parse blocked on a FIFO named by password_file")
	}
}

// TestCheckRequestOpensNothing: the API's validation reports the file
// references it did not read, and none of them decides validity.
func TestCheckRequestOpensNothing(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	text := withPasswordFile(t, base, "/nonexistent/pw")
	text = edit(t, text, "interface: eth-a", "interface: eth-a\n    health: {targets: [{kind: https, url: 'https://[2001:db8:9000:1::10]/', ca_file: '"+fifo+"'}, 'icmp://2001:db8:9000:1::11', 'icmp://2001:db8:9000:1::12']}")
	text += "api: {tcp: {address: '192.0.2.1:50051', cert_file: /root/cert.pem, key_file: /root/key.pem, client_ca_file: /root/ca.pem, viewers: [cn:x]}}\n"
	// Parse opens the password file and fails on it ...
	_, err := Parse("t", []byte(text), nil)
	assertProblem(t, err, "uplinks[1].bgp.password_file", "cannot read it")
	// ... CheckRequest does not.
	advice, err := CheckRequest("request", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]string{}
	for _, p := range advice {
		notes[p.Path] = p.Message
	}
	for path, file := range map[string]string{
		"uplinks[1].bgp.password_file":         "/nonexistent/pw",
		"uplinks[0].health.targets[0].ca_file": fifo,
		"api.tcp.cert_file":                    "/root/cert.pem",
		"api.tcp.key_file":                     "/root/key.pem",
		"api.tcp.client_ca_file":               "/root/ca.pem",
	} {
		if !strings.HasPrefix(notes[path], file+" was not read") {
			t.Errorf("advice on %s = %q; want a note that %s was not read", path, notes[path], file)
		}
	}
	// Structure is still checked.
	_, err = CheckRequest("request", []byte(edit(t, text, "asn: 64500", "asn: 0")))
	assertProblem(t, err, "node.asn", "missing")
}

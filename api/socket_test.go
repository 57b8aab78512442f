package api

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestListenUnixRefusesNonSockets (#13): whatever is at the socket path
// and is not a stale socket stays, and the error says what it is. The old
// code removed any file there (and a symlink's target could then be
// chmod'ed/chown'ed through it).
func TestListenUnixRefusesNonSockets(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is a regular file, not a stale socket"},
		{"symlink", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "precious")
			if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, "is a symlink, not a stale socket"},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a stale socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "api.sock")
			tc.make(t, path)
			before, _ := os.Lstat(path)
			l, err := ListenUnix(path, 0o660, "")
			if err == nil {
				l.Close()
				t.Fatalf("ListenUnix over a %s: no error", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			after, lerr := os.Lstat(path)
			if lerr != nil || !os.SameFile(before, after) {
				t.Errorf("the %s at the socket path was replaced or removed (%v)", tc.name, lerr)
			}
		})
	}
}

// TestListenUnixStaleAndDir: a stale socket is replaced, the directory is
// created with SocketDirMode, the socket gets its mode exactly (whatever
// the umask), and an existing directory others can write to is refused.
func TestListenUnixStaleAndDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	path := filepath.Join(dir, "api.sock")
	old := syscall.Umask(0) // the most permissive umask: the socket must not inherit it
	l, err := ListenUnix(path, 0o660, "")
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != SocketDirMode {
		t.Errorf("directory: %v %v; want mode %04o", fi.Mode(), err, SocketDirMode)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket: %v %v; want a socket with mode 0660", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %v; want the socket only (no temporary name left)", ents)
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("Close left the socket: %v", err)
	}

	// A stale socket: bound, then its owner died without removing it.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err = ListenUnix(path, 0o600, "")
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()

	// A directory others may write to: they could swap the socket.
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if l, err := ListenUnix(filepath.Join(open, "api.sock"), 0o660, ""); err == nil || !strings.Contains(err.Error(), "others could replace the socket") {
		if l != nil {
			l.Close()
		}
		t.Errorf("world-writable directory: %v; want refused", err)
	}
	// A symlink as the directory.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if l, err := ListenUnix(filepath.Join(link, "api.sock"), 0o660, ""); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		if l != nil {
			l.Close()
		}
		t.Errorf("symlinked directory: %v; want refused", err)
	}
}

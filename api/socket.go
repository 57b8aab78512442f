package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// SocketDirMode is the mode ListenUnix gives the socket's directory when
// it creates it: the daemon's user may write, the socket's group may only
// enter, others nothing.
const SocketDirMode os.FileMode = 0o750

// umaskMu serializes the process-wide umask change around bind(2).
var umaskMu sync.Mutex

// ListenUnix creates the API socket at path with mode and, when group is
// set, that group (by name or number).
//
// The directory must belong to the daemon's user and be writable by no one
// else (so nobody can swap the socket for a symlink); a missing one is
// created with SocketDirMode and the socket's group. At path, only a stale
// socket (one nobody answers on) is replaced; a live socket, a file, a
// symlink or anything else is an error naming what is there. The socket is
// bound under a temporary name with umask 0177, given its mode and group
// there (the name is ours alone: nothing to follow), then renamed into
// place, so it never exists at path with other permissions.
func ListenUnix(path string, mode os.FileMode, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		var err error
		if gid, err = lookupGroup(group); err != nil {
			return nil, fmt.Errorf("api.socket_group: %w", err)
		}
	}
	dir := filepath.Dir(path)
	if err := socketDir(dir, gid); err != nil {
		return nil, err
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".api-%d.tmp", os.Getpid()))
	_ = os.Remove(tmp) // ours from an earlier run: the directory is ours alone
	umaskMu.Lock()
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", tmp)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("api.socket: %w", err)
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false) // the name it would unlink is the temporary one
	fail := func(key string, err error) (net.Listener, error) {
		ul.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail("api.socket_mode", err)
	}
	if gid >= 0 {
		if err := os.Lchown(tmp, -1, gid); err != nil {
			return fail("api.socket_group", err)
		}
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		return fail("api.socket", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail("api.socket", err)
	}
	return &socketListener{UnixListener: ul, path: path, fi: fi}, nil
}

// socketDir makes sure dir is the daemon's: created with SocketDirMode
// (group gid when set) if missing; otherwise a real directory (not a
// symlink) owned by our user and not writable by group or others.
func socketDir(dir string, gid int) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("api.socket: %w", err)
		}
		if err := os.Mkdir(dir, SocketDirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("api.socket: %w", err)
		}
		// Mkdir applied the umask; set the mode we mean.
		if err := os.Chmod(dir, SocketDirMode); err != nil {
			return fmt.Errorf("api.socket: %w", err)
		}
		if gid >= 0 {
			if err := os.Lchown(dir, -1, gid); err != nil {
				return fmt.Errorf("api.socket_group: directory %s: %w", dir, err)
			}
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return fmt.Errorf("api.socket: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("api.socket: %s is not a directory (%s); the socket's directory must be a real directory the daemon owns", dir, fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("api.socket: directory %s belongs to uid %d, not to the daemon (uid %d); chown it, or remove it and let the daemon create it", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("api.socket: directory %s has mode %04o: others could replace the socket; chmod go-w %s (the daemon creates it with %04o)", dir, fi.Mode().Perm(), dir, SocketDirMode)
	}
	return nil
}

// clearStale removes a socket at path that nobody answers on. Anything else
// there is left alone and reported.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api.socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		kind := "a regular file"
		if t := fi.Mode().Type(); t != 0 {
			kind = "a " + t.String() + " file"
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			kind = "a symlink"
		}
		return fmt.Errorf("api.socket: %s is %s, not a stale socket; the daemon replaces only its own sockets: remove it if it is not needed, or set api.socket to another path", path, kind)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("api.socket: %s is served by another process (another multihomed?); stop it or set api.socket to another path", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api.socket: remove stale %s: %w", path, err)
	}
	return nil
}

// socketListener removes the socket when closed, unless something else
// has taken its place meanwhile.
type socketListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
}

func (s *socketListener) Close() error {
	err := s.UnixListener.Close()
	s.once.Do(func() {
		if fi, lerr := os.Lstat(s.path); lerr == nil && os.SameFile(fi, s.fi) {
			_ = os.Remove(s.path)
		}
	})
	return err
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil {
		return n, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("%q: %w; name an existing group", g, err)
	}
	return strconv.Atoi(grp.Gid)
}

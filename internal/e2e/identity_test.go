package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// The daemon runs as lab.DaemonUser with lab.DaemonCaps only, as in
// production (docs/operations.md, Security): every file it reads or writes
// must be reachable by that user, which has no CAP_DAC_OVERRIDE.
var (
	identityOnce sync.Once
	identity     lab.Identity
	identityErr  error
)

// daemonIdentity returns who the daemon runs as, creating the user the
// first time (needLab has made sure we are root).
func daemonIdentity(t *testing.T) lab.Identity {
	t.Helper()
	needLab(t)
	identityOnce.Do(func() { identity, identityErr = lab.EnsureDaemonUser(context.Background()) })
	if identityErr != nil {
		t.Fatal(identityErr)
	}
	return identity
}

// daemonDir returns a new empty directory owned by the daemon's user, mode
// 0750, for its state directory and API socket. The test's temporary root
// above it is made traversable (0711): entering it, not listing it.
func daemonDir(t *testing.T) string {
	t.Helper()
	id := daemonIdentity(t)
	d := closedDir(t)
	if err := id.Own(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// closedDir returns a new empty directory of mode 0750 whose parent (the
// test's temporary root) is traversable but not listable (0711).
func closedDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(filepath.Dir(d), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o750); err != nil {
		t.Fatal(err)
	}
	return d
}

// configDir returns a new directory for the daemon's configuration as
// production lays it out: root owns it and the file, the daemon's group
// may read (0750 and, see writeConfig, 0640), so the daemon cannot change
// its own configuration.
func configDir(t *testing.T) string {
	t.Helper()
	id := daemonIdentity(t)
	d := closedDir(t)
	if err := os.Chown(d, 0, id.GID); err != nil {
		t.Fatal(err)
	}
	return d
}

// daemonFiles returns an env holding only where a daemon's files go, laid
// out as in production: the configuration in a configDir, the state
// directory in a daemonDir. For tests that start a daemon in a lab other
// than env's (see startDaemonIn).
func daemonFiles(t *testing.T) *env {
	t.Helper()
	return &env{t: t, binary: daemonBinary, configPath: filepath.Join(configDir(t), "multihomed.yaml"),
		stateDir: filepath.Join(daemonDir(t), "state"), gid: daemonIdentity(t).GID}
}

// startDaemon starts the daemon in the edge as the unprivileged user.
func (e *env) startDaemon() (*lab.Daemon, error) {
	return e.startDaemonIn(e.lab.Edge)
}

// startDaemonIn starts the daemon in ns as the unprivileged user, with
// lab.DaemonCaps and extra (setpriv names) besides: the capabilities a
// configuration needs beyond those, such as lab.EBPFCaps.
func (e *env) startDaemonIn(ns *netns.NS, extra ...string) (*lab.Daemon, error) {
	id := daemonIdentity(e.t).WithCaps(extra...)
	return lab.StartDaemonAs(context.Background(), ns, &id, e.binary, e.configPath, nil)
}

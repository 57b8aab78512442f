package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// DaemonUser is the system user (and group) the lab runs multihomed as.
const DaemonUser = "multihomed-test"

// DaemonCaps are the capabilities the lab grants the daemon, in setpriv's
// spelling: what production grants (docs/operations.md, Security), so the
// tests prove the daemon works with exactly these.
var DaemonCaps = []string{"net_admin", "net_raw"}

// Identity is an unprivileged user the daemon runs as, holding exactly Caps
// (setpriv names, such as net_raw) and nothing else: no supplementary
// groups, a bounding set of Caps only, no_new_privs.
type Identity struct {
	User     string
	UID, GID int
	Caps     []string
}

// EnsureDaemonUser returns DaemonUser as an Identity with DaemonCaps,
// creating the user first (useradd --system, no home, no login shell) if
// it does not exist. Test packages may call it at once: a useradd that
// loses the race is fine when the user exists afterwards. It needs root.
func EnsureDaemonUser(ctx context.Context) (Identity, error) {
	u, err := user.Lookup(DaemonUser)
	if err != nil {
		out, uerr := exec.CommandContext(ctx, "useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", DaemonUser).CombinedOutput()
		if u, err = user.Lookup(DaemonUser); err != nil {
			return Identity{}, fmt.Errorf("lab: create user %s: %v: %s", DaemonUser, uerr, strings.TrimSpace(string(out)))
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return Identity{}, fmt.Errorf("lab: user %s: %w", DaemonUser, err)
	}
	return Identity{User: DaemonUser, UID: uid, GID: gid, Caps: DaemonCaps}, nil
}

// wrap returns argv run through setpriv as id. The inheritable set must
// hold a capability before it can be ambient, and the ambient set is what
// survives exec into a binary without file capabilities. setpriv execs in
// place, so the daemon keeps the process id (Daemon.Signal relies on it).
func (id Identity) wrap(argv ...string) []string {
	caps := "-all"
	for _, c := range id.Caps {
		caps += ",+" + c
	}
	return append([]string{"setpriv",
		"--reuid=" + strconv.Itoa(id.UID), "--regid=" + strconv.Itoa(id.GID), "--clear-groups",
		"--inh-caps=" + caps, "--ambient-caps=" + caps, "--bounding-set=" + caps,
		"--no-new-privs", "--"}, argv...)
}

// Own gives each path to id (chown), leaving its mode alone: for the files
// and directories a test's daemon must write.
func (id Identity) Own(paths ...string) error {
	for _, p := range paths {
		if err := os.Chown(p, id.UID, id.GID); err != nil {
			return fmt.Errorf("lab: give %s to %s: %w", p, id.User, err)
		}
	}
	return nil
}

// EBPFCaps are the capabilities, beyond DaemonCaps, that the eBPF NPTv6
// backend needs to load its programs and maps (privilege.Needs says the
// same; docs/operations.md, Capabilities).
var EBPFCaps = []string{"bpf", "perfmon"}

// WithCaps returns id holding caps (setpriv names) besides its own.
func (id Identity) WithCaps(caps ...string) Identity {
	id.Caps = append(slices.Clip(id.Caps), caps...)
	return id
}

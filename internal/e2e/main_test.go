package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

var daemonBinary, mhctlBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The daemon runs as an unprivileged user (identity_test.go): it must
	// be able to reach its binary.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBinary = filepath.Join(dir, "multihomed")
	out, err := exec.Command("go", "build", "-race", "-o", daemonBinary, "github.com/multihomed/multihomed/cmd/multihomed").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build multihomed: %v\n%s", err, out)
		os.Exit(1)
	}
	mhctlBinary = filepath.Join(dir, "mhctl")
	if out, err := exec.Command("go", "build", "-o", mhctlBinary, "github.com/multihomed/multihomed/cmd/mhctl").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build mhctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's lab with the daemon running in its edge.
type env struct {
	t          *testing.T
	lab        *lab.Lab
	daemon     *lab.Daemon
	configPath string
	// stateDir is the daemon's state directory (overrides, egress state)
	// wherever a config written by the test names none: never the host's
	// /var/lib/multihomed.
	stateDir string
	// gid is the daemon user's group, which may read the config.
	gid int
	// binary is the daemon build startDaemon runs.
	binary string
}

func needLab(t *testing.T) {
	testenv.Need(t, "ip", "vtysh", "/usr/lib/frr/bgpd", "bird", "birdc")
}

// start brings a lab up and the daemon with the given edge config. Everything
// is torn down when the test ends, pass or fail; on failure the routers' and
// daemon's logs are printed.
func start(t *testing.T, opts lab.Options, edgeConfig string) *env {
	t.Helper()
	return startBinary(t, opts, edgeConfig, daemonBinary)
}

// startBinary is start with another build of the daemon (see plainDaemon).
func startBinary(t *testing.T, opts lab.Options, edgeConfig, binary string) *env {
	t.Helper()
	needLab(t)
	ctx := context.Background()
	opts.ID = netns.UniqueID()
	l, err := lab.Up(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The daemon creates its state directory itself, inside one it owns.
	e := daemonFiles(t)
	e.lab, e.binary = l, binary
	// Daemons of parallel tests share the filesystem: each gets its own
	// API socket unless the test sets one.
	if !strings.Contains(edgeConfig, "\napi:") {
		edgeConfig += fmt.Sprintf("api:\n  socket: %s\n", filepath.Join(daemonDir(t), "api.sock"))
	}

	t.Cleanup(func() {
		if e.daemon != nil {
			_ = e.daemon.Stop(10 * time.Second)
		}
		if t.Failed() {
			if e.daemon != nil {
				t.Logf("daemon log:\n%s", e.daemon.Log())
			}
			for name, r := range l.Routers() {
				t.Logf("%s log (tail):\n%s", name, tail(r.Log(), 40))
			}
		}
		l.Close()
	})
	e.writeConfig(edgeConfig)
	e.daemon, err = e.startDaemon()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeConfig writes the daemon's configuration file, adding the test's
// state directory if text names none.
func (e *env) writeConfig(text string) {
	e.t.Helper()
	if !strings.Contains(text, "state_dir:") {
		if strings.Contains(text, "\ncontroller:\n") {
			text = strings.Replace(text, "\ncontroller:\n", "\ncontroller:\n  state_dir: "+e.stateDir+"\n", 1)
		} else {
			text += "controller:\n  state_dir: " + e.stateDir + "\n"
		}
	}
	// Root's, readable by the daemon's group only (see configDir).
	if err := os.WriteFile(e.configPath, []byte(text), 0o640); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chown(e.configPath, 0, e.gid); err != nil {
		e.t.Fatal(err)
	}
}

var eventually = testenv.Eventually

// startLANFlow starts the 1 kHz flow between l's internet host and its LAN
// host; it stops when the test ends.
func startLANFlow(t *testing.T, l *lab.Lab) *lab.Flow {
	t.Helper()
	flow, err := lab.StartFlow(l.Inet, "inet", lab.InetAddr6, l.LAN, "lan", lab.LANAddr6, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(flow.Stop)
	return flow
}

// awaitCleanFlow waits until flow runs both ways without loss over a
// half-second window; what says when, for the failure message.
func awaitCleanFlow(t *testing.T, flow *lab.Flow, what string) {
	t.Helper()
	eventually(t, what+": the flow runs both ways without loss", 30*time.Second, func() (bool, string) {
		m := flow.Mark()
		time.Sleep(500 * time.Millisecond) // a window to measure over
		r := flow.ReportSince(m, 100*time.Millisecond)
		return r[0].Sent > 100 && r[0].Lost == 0 && r[1].Sent > 100 && r[1].Lost == 0, fmt.Sprintf("%v / %v", r[0], r[1])
	})
}

// waitEstablished waits for the router's sessions with each neighbor.
func waitEstablished(t *testing.T, r lab.Router, neighbors ...netip.Addr) {
	t.Helper()
	eventually(t, r.Name()+" sessions with the edge established", 60*time.Second, func() (bool, string) {
		var states []string
		all := true
		for _, n := range neighbors {
			s, err := r.Session(context.Background(), n)
			if err != nil {
				return false, err.Error()
			}
			states = append(states, n.String()+"="+s.State)
			all = all && s.Established
		}
		return all, strings.Join(states, " ")
	})
}

// startAsync starts cmd and returns the channel its Wait result arrives
// on, so a test can watch the lab while the command runs.
func startAsync(t *testing.T, cmd *exec.Cmd) <-chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}

// waitSitePath waits up to 30 s until want holds for r's path to the site
// /48 learned from edge (ok: r has one).
func waitSitePath(t *testing.T, r lab.Router, edge netip.Addr, what string, want func(p lab.Path, ok bool) bool) {
	t.Helper()
	eventually(t, what, 30*time.Second, func() (bool, string) {
		p, ok, why, err := pathFrom(r, lab.SitePrefix6, edge)
		if err != nil {
			return false, err.Error() // unknown is neither present nor absent
		}
		return want(p, ok), fmt.Sprintf("present=%v %+v %s", ok, p, why)
	})
}

// ispAHolds waits for ISP-A's sessions with e's edge and for ISP-A to
// hold the site /48 without GRACEFUL_SHUTDOWN, then returns a wait for
// ISP-A's path to the site /48 from the edge (waitSitePath): what the
// drain and decommission tests check step by step.
func ispAHolds(t *testing.T, e *env) func(what string, want func(p lab.Path, ok bool) bool) {
	t.Helper()
	a := e.lab.ISPARouter
	waitEstablished(t, a, ispA...)
	holds := func(what string, want func(p lab.Path, ok bool) bool) {
		t.Helper()
		waitSitePath(t, a, lab.EdgeAAddr6, what, want)
	}
	holds("ISP-A holds the site /48 without GRACEFUL_SHUTDOWN", func(p lab.Path, ok bool) bool { return ok && !isGShut(p) })
	return holds
}

// pathFrom returns the router's path for p learned from neighbor; why
// says what the router held instead. err is set when the router could not
// be read: then ok is false but the path is not known to be absent, so a
// wait for a withdrawal must not take it as one.
func pathFrom(r lab.Router, p netip.Prefix, from netip.Addr) (path lab.Path, ok bool, why string, err error) {
	paths, err := r.Paths(context.Background(), p)
	if err != nil {
		return lab.Path{}, false, err.Error(), err
	}
	for _, path := range paths {
		if path.From == from {
			return path, true, "", nil
		}
	}
	return lab.Path{}, false, fmt.Sprintf("%d paths, none from %s: %+v", len(paths), from, paths), nil
}

func received(t *testing.T, r lab.Router, from netip.Addr) []netip.Prefix {
	t.Helper()
	ps, err := r.Received(context.Background(), from)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func equalPrefixes(a []netip.Prefix, b ...netip.Prefix) bool { return slices.Equal(a, b) }

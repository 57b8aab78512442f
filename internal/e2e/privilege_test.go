package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/netns/netnstest"
)

// TestMissingCapabilityExits: the daemon, started by an unprivileged user
// without a capability its configuration needs, exits with status 1 and a
// message naming the capability, why it is needed and the fix, before it
// does anything else. It runs in a namespace of its own, so a check that
// wrongly passed could not touch the host's routes.
func TestMissingCapabilityExits(t *testing.T) {
	t.Parallel()
	base := lab.Identity{}
	id := daemonIdentity(t)
	base.User, base.UID, base.GID = id.User, id.UID, id.GID
	const icmpUplinks = `profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {prefixes: ["2001:db8:face::/48"]}
uplinks:
  - name: isp-a
    interface: eth-a
    bgp: {peer_asn: 64501, neighbor: "2001:db8:1000:1::1", import: default}
    health: {targets: ["icmp://2001:db8:9000:1::10"]}
  - name: isp-b
    interface: eth-b
    bgp: {peer_asn: 64502, neighbor: "2001:db8:2000:1::1", import: default}
    health: {targets: ["icmp://2001:db8:9000:1::10", "tcp://[2001:db8:9000:2::10]:443"]}
`
	tests := []struct {
		name   string
		caps   []string
		config string
		want   string
	}{
		{
			name:   "no CAP_NET_RAW with ICMP probes",
			caps:   []string{"net_admin"},
			config: icmpUplinks,
			want: "multihomed: missing CAP_NET_RAW (ICMP probes on uplinks isp-a, isp-b); run with AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW or as root; " +
				"CAP_NET_RAW not in this process's bounding set, so its parent (container runtime, systemd CapabilityBoundingSet=) must allow it first",
		},
		{
			name:   "no CAP_NET_BIND_SERVICE with bgp.listen_port 179",
			caps:   []string{"net_admin", "net_raw"},
			config: icmpUplinks + "bgp: {listen_port: 179}\n",
			want: "multihomed: missing CAP_NET_BIND_SERVICE (bgp.listen_port port 179 is below 1024); run with AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW or as root; " +
				"CAP_NET_BIND_SERVICE not in this process's bounding set, so its parent (container runtime, systemd CapabilityBoundingSet=) must allow it first",
		},
		{
			// PA mode's default backend; TCP probes only, so CAP_NET_RAW
			// is not asked for.
			name: "no CAP_BPF, CAP_PERFMON with the eBPF NPTv6 backend",
			caps: []string{"net_admin", "net_raw"},
			config: `profile: lab
node: {router_id: 198.51.100.1, asn: 64500}
site: {mode: pa, internal_prefix: "fd7a:5e1d:9c00::/48"}
uplinks:
  - name: isp-a
    interface: eth-a
    gateway: "2001:db8:1000:1::1"
    pa_prefix: "2001:db8:1001::/48"
    health: {targets: ["tcp://[2001:db8:9000:2::10]:443"]}
`,
			want: "multihomed: missing CAP_PERFMON (the verifier's pointer checks on the eBPF NPTv6 programs); missing CAP_BPF (loading the eBPF NPTv6 programs and maps); " +
				"run with AmbientCapabilities=CAP_NET_ADMIN CAP_PERFMON CAP_BPF or as root; " +
				"CAP_PERFMON CAP_BPF not in this process's bounding set, so its parent (container runtime, systemd CapabilityBoundingSet=) must allow it first",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			ns := netnstest.New(t, "mhcap-"+netns.UniqueID())
			dir := configDir(t)
			path := filepath.Join(dir, "multihomed.yaml")
			state := daemonDir(t)
			cfg := tt.config + fmt.Sprintf("controller: {state_dir: %s}\napi: {socket: %s/api.sock}\nmetrics: {address: \"\"}\n", state, state)
			if err := os.WriteFile(path, []byte(cfg), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(path, 0, id.GID); err != nil {
				t.Fatal(err)
			}
			as := base
			as.Caps = tt.caps
			d, err := lab.StartDaemonAs(ctx, ns, &as, daemonBinary, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-d.Done():
			case <-time.After(30 * time.Second):
				_ = d.Stop(5 * time.Second)
				t.Fatalf("the daemon still runs after 30s; it should have refused to start. Log:\n%s", d.Log())
			}
			var exit *exec.ExitError
			if err := d.Stop(0); !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit: %v; want exit status 1", err)
			}
			if got := strings.TrimSpace(d.Log()); got != tt.want {
				t.Errorf("output:\n got %s\nwant %s", got, tt.want)
			}
			if entries, _ := os.ReadDir(state); len(entries) != 0 {
				t.Errorf("the refused daemon created %d files in its state directory", len(entries))
			}
		})
	}
}

// TestDaemonRunsUnprivileged: in the lab the daemon runs as the test user
// with exactly CAP_NET_ADMIN and CAP_NET_RAW (effective, permitted,
// bounding), no groups and no_new_privs; with that its ICMP probes work, and
// what it creates (state directory and files, API socket) belongs to that
// user with restrictive modes.
func TestDaemonRunsUnprivileged(t *testing.T) {
	t.Parallel()
	id := daemonIdentity(t)
	sock := filepath.Join(daemonDir(t), "api.sock")
	cfg := lab.EdgeConfig(map[string]string{"isp-a": lab.HealthBlock(lab.ProfileFast)}) + fmt.Sprintf("api:\n  socket: %s\n", sock)
	e := start(t, lab.Options{}, cfg)

	// ICMP probes over raw sockets: the verdict can only be up if they
	// were sent and answered.
	eventually(t, "isp-a's ICMP probes make it up", 60*time.Second, func() (bool, string) {
		p, err := probesOf(t, sock)
		if err != nil {
			return false, err.Error()
		}
		return p["isp-a"].Verdict == "up" && p["isp-a"].probes() > 0, fmt.Sprintf("%+v", p["isp-a"])
	})
	// By now the process is the daemon itself, not `ip netns exec` or
	// setpriv before their exec: its status is the daemon's.
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", e.daemon.Pid())); err != nil || exe != daemonBinary {
		t.Fatalf("process %d runs %q (%v), want %s", e.daemon.Pid(), exe, err, daemonBinary)
	}
	status := procStatus(t, e.daemon.Pid())
	want := map[string]string{
		"Uid":        strings.Repeat(strconv.Itoa(id.UID)+"\t", 3) + strconv.Itoa(id.UID),
		"Gid":        strings.Repeat(strconv.Itoa(id.GID)+"\t", 3) + strconv.Itoa(id.GID),
		"Groups":     "",
		"CapEff":     "0000000000003000", // CAP_NET_ADMIN (12), CAP_NET_RAW (13)
		"CapPrm":     "0000000000003000",
		"CapBnd":     "0000000000003000",
		"CapAmb":     "0000000000003000",
		"NoNewPrivs": "1",
	}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("/proc/%d/status %s: %q, want %q", e.daemon.Pid(), k, status[k], v)
		}
	}

	// A drain makes it write its overrides file.
	if out, stderr, code := mhctl(t, sock, "drain", "isp-b", "--reason", "e2e file modes"); code != 0 {
		t.Fatalf("mhctl drain: exit %d: %s %s", code, out, stderr)
	}
	eventually(t, "overrides.json written", 15*time.Second, func() (bool, string) {
		_, err := os.Stat(filepath.Join(e.stateDir, "overrides.json"))
		return err == nil, fmt.Sprint(err)
	})

	checkOwned(t, id, e.stateDir, fs.ModeDir|0o750)
	entries, err := os.ReadDir(e.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		// State files are private; the pid file is the conventional 0644
		// (it tells `multihomed stop` and monitoring which process to look
		// at, nothing secret).
		mode := fs.FileMode(0o600)
		if en.Name() == "multihomed.pid" {
			mode = 0o644
		}
		checkOwned(t, id, filepath.Join(e.stateDir, en.Name()), mode)
	}
	checkOwned(t, id, sock, fs.ModeSocket|0o660)
}

// checkOwned fails t unless path belongs to id and has exactly mode.
func checkOwned(t *testing.T, id lab.Identity, path string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Error(err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != id.UID || int(st.Gid) != id.GID || fi.Mode() != mode {
		t.Errorf("%s: owner %d:%d mode %s; want %d:%d %s", path, st.Uid, st.Gid, fi.Mode(), id.UID, id.GID, mode)
	}
}

// procStatus reads /proc/PID/status as key: value.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// FRR is one FRR instance (zebra and bgpd) running inside a namespace,
// with its pathspace (-N) named after the namespace.
type FRR struct {
	ns      *netns.NS
	confDir string
	runDir  string
}

// startFRR writes bgpdConf and starts zebra and bgpd inside ns.
func startFRR(ctx context.Context, ns *netns.NS, bgpdConf string) (*FRR, error) {
	f := &FRR{ns: ns, confDir: "/etc/frr/" + ns.Name, runDir: "/var/run/frr/" + ns.Name}
	for _, d := range []string{f.confDir, f.runDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab: frr %s: %w", ns.Name, err)
		}
	}
	files := map[string]string{
		"zebra.conf": "hostname " + ns.Name + "\n",
		"bgpd.conf":  "log file " + f.runDir + "/bgpd.log\n" + bgpdConf,
		"vtysh.conf": "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(f.confDir, name), []byte(text), 0o640); err != nil {
			return nil, fmt.Errorf("lab: frr %s: %w", ns.Name, err)
		}
	}
	// The daemons drop to the frr user: it must own its directories.
	if u, err := user.Lookup("frr"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{f.confDir, f.runDir} {
			_ = filepath.Walk(d, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
		}
	}
	for _, d := range []string{"zebra", "bgpd"} {
		args := []string{"/usr/lib/frr/" + d, "-N", ns.Name, "-d", "-f", filepath.Join(f.confDir, d+".conf"), "-i", filepath.Join(f.runDir, d+".pid")}
		if _, err := ns.Run(ctx, args...); err != nil {
			f.Close()
			return nil, fmt.Errorf("lab: start %s in %s: %w", d, ns.Name, err)
		}
	}
	// bgpd answers vtysh once it has read its config.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var v map[string]any
		err := f.JSON(ctx, "show bgp summary json", &v)
		if err == nil {
			return f, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lab: frr %s did not come up: %w", ns.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Name is the instance's pathspace, for `vtysh -N`.
func (f *FRR) Name() string { return f.ns.Name }

// Vtysh runs vtysh commands (each one a -c) and returns the output.
func (f *FRR) Vtysh(ctx context.Context, cmds ...string) (string, error) {
	args := []string{"-N", f.ns.Name}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	cmd := exec.CommandContext(ctx, "vtysh", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab: vtysh -N %s %q: %v: %s", f.ns.Name, cmds, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// JSON runs one show command ending in "json" and decodes its output.
func (f *FRR) JSON(ctx context.Context, cmd string, v any) error {
	out, err := f.Vtysh(ctx, cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("lab: vtysh -N %s %q: not JSON: %v: %.200s", f.ns.Name, cmd, err, out)
	}
	return nil
}

// Configure applies configuration commands (after `configure terminal`).
func (f *FRR) Configure(ctx context.Context, lines ...string) error {
	_, err := f.Vtysh(ctx, append([]string{"configure terminal"}, lines...)...)
	return err
}

// Close stops the daemons and removes the instance's files.
func (f *FRR) Close() {
	for _, d := range []string{"bgpd", "zebra"} {
		data, err := os.ReadFile(filepath.Join(f.runDir, d+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.RemoveAll(f.confDir)
	_ = os.RemoveAll(f.runDir)
}

// Log returns bgpd's log, for a failing test to print.
func (f *FRR) Log() string {
	data, _ := os.ReadFile(filepath.Join(f.runDir, "bgpd.log"))
	return string(data)
}

func familyWord(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// Paths returns every path FRR holds for exactly p.
func (f *FRR) Paths(ctx context.Context, p netip.Prefix) ([]Path, error) {
	var v struct {
		Paths []struct {
			ASPath struct {
				String string `json:"string"`
			} `json:"aspath"`
			Community struct {
				String string `json:"string"`
			} `json:"community"`
			LargeCommunity struct {
				String string `json:"string"`
			} `json:"largeCommunity"`
			MED      *uint32 `json:"metric"`
			LocPrf   *uint32 `json:"locPrf"`
			BestPath *struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			Peer struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	if err := f.JSON(ctx, fmt.Sprintf("show bgp %s unicast %s json", familyWord(p), p), &v); err != nil {
		return nil, err
	}
	var out []Path
	for _, fp := range v.Paths {
		path := Path{
			ASPath:           parseASPath(fp.ASPath.String),
			Communities:      strings.Fields(fp.Community.String),
			LargeCommunities: strings.Fields(fp.LargeCommunity.String),
			MED:              fp.MED,
			LocalPref:        fp.LocPrf,
			Best:             fp.BestPath != nil && fp.BestPath.Overall,
		}
		path.From, _ = netip.ParseAddr(fp.Peer.PeerID)
		out = append(out, path)
	}
	return out, nil
}

// Session returns FRR's view of its session with neighbor.
func (f *FRR) Session(ctx context.Context, neighbor netip.Addr) (Session, error) {
	var v map[string]struct {
		State       string `json:"bgpState"`
		Established int    `json:"connectionsEstablished"`
		Dropped     int    `json:"connectionsDropped"`
		LastReset   string `json:"lastResetDueTo"`
		LastNotif   string `json:"lastNotificationReason"`
		Caps        struct {
			GracefulRestart string `json:"gracefulRestart"`
		} `json:"neighborCapabilities"`
	}
	if err := f.JSON(ctx, "show bgp neighbors "+neighbor.String()+" json", &v); err != nil {
		return Session{}, err
	}
	n, ok := v[neighbor.String()]
	if !ok {
		return Session{}, fmt.Errorf("lab: %s has no neighbor %s", f.ns.Name, neighbor)
	}
	return Session{
		Established:        n.State == "Established",
		State:              n.State,
		Resets:             n.Established,
		LastReset:          strings.TrimSpace(n.LastReset + " " + n.LastNotif),
		GracefulRestartCap: n.Caps.GracefulRestart,
	}, nil
}

// Received returns the prefixes FRR accepted from neighbor, in the family
// of the neighbor's address (the lab runs one session per family).
func (f *FRR) Received(ctx context.Context, neighbor netip.Addr) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, fam := range []string{familyWord(netip.PrefixFrom(neighbor, 0))} {
		var v struct {
			Routes map[string]any `json:"routes"`
		}
		if err := f.JSON(ctx, fmt.Sprintf("show bgp %s unicast neighbors %s routes json", fam, neighbor), &v); err != nil {
			return nil, err
		}
		for k := range v.Routes {
			if p, err := netip.ParsePrefix(k); err == nil {
				out = append(out, p)
			}
		}
	}
	sortPrefixes(out)
	return out, nil
}

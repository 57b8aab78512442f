package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// BIRD is one BIRD 2 instance running inside a namespace.
type BIRD struct {
	ns    *netns.NS
	dir   string
	proto map[netip.Addr]string // neighbor -> protocol name
}

func startBIRD(ctx context.Context, ns *netns.NS, conf string, proto map[netip.Addr]string) (*BIRD, error) {
	b := &BIRD{ns: ns, dir: "/run/mhlab-bird-" + ns.Name, proto: proto}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: bird %s: %w", ns.Name, err)
	}
	conf = "log \"" + filepath.Join(b.dir, "bird.log") + "\" all;\n" + conf
	if err := os.WriteFile(filepath.Join(b.dir, "bird.conf"), []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("lab: bird %s: %w", ns.Name, err)
	}
	if _, err := ns.Run(ctx, "bird", "-c", filepath.Join(b.dir, "bird.conf"), "-s", b.sock(), "-P", filepath.Join(b.dir, "bird.pid")); err != nil {
		b.Close()
		return nil, fmt.Errorf("lab: start bird in %s: %w", ns.Name, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := b.Cmd(ctx, "show", "status")
		if err == nil {
			return b, nil
		}
		if time.Now().After(deadline) {
			b.Close()
			return nil, fmt.Errorf("lab: bird %s did not come up: %w", ns.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *BIRD) sock() string { return filepath.Join(b.dir, "bird.ctl") }

// Name names the instance (its namespace).
func (b *BIRD) Name() string { return b.ns.Name }

// Cmd runs a birdc command and returns its output.
func (b *BIRD) Cmd(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", b.sock()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: birdc %s %v: %v: %s", b.ns.Name, args, err, out)
	}
	return string(out), nil
}

// Close stops BIRD and removes its files.
func (b *BIRD) Close() {
	if data, err := os.ReadFile(filepath.Join(b.dir, "bird.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.RemoveAll(b.dir)
}

// Log returns BIRD's log.
func (b *BIRD) Log() string {
	data, _ := os.ReadFile(filepath.Join(b.dir, "bird.log"))
	return string(data)
}

var (
	birdCommunityRe = regexp.MustCompile(`\((\d+),\s*(\d+)\)`)
	birdLargeRe     = regexp.MustCompile(`\((\d+),\s*(\d+),\s*(\d+)\)`)
)

// Paths returns every path BIRD holds for exactly p (none, without an
// error, when it holds no route for p).
func (b *BIRD) Paths(ctx context.Context, p netip.Prefix) ([]Path, error) {
	out, err := b.Cmd(ctx, "show", "route", p.String(), "all")
	if err != nil {
		// birdc exits 1 when BIRD holds no route for p: that is an
		// answer (no paths), not a failure.
		if strings.Contains(out, "Network not found") {
			return nil, nil
		}
		return nil, err
	}
	paths := parseBIRDRoutes(out)
	for i := range paths {
		for addr, proto := range b.proto {
			if paths[i].proto == proto {
				paths[i].From = addr
			}
		}
	}
	return paths, nil
}

// parseBIRDRoutes reads `show route ... all` output: a route starts at a
// line holding "unicast [" and its attributes follow.
func parseBIRDRoutes(out string) []Path {
	var paths []Path
	var cur *Path
	for _, line := range strings.Split(out, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.Contains(t, "unicast ["):
			paths = append(paths, Path{Best: strings.Contains(t, "] * ")})
			cur = &paths[len(paths)-1]
			if f := strings.Fields(t[strings.Index(t, "unicast [")+len("unicast ["):]); len(f) > 0 {
				cur.proto = f[0]
			}
		case cur == nil:
		case strings.HasPrefix(t, "BGP.as_path:"):
			cur.ASPath = parseASPath(strings.TrimPrefix(t, "BGP.as_path:"))
		case strings.HasPrefix(t, "BGP.community:"):
			for _, m := range birdCommunityRe.FindAllStringSubmatch(t, -1) {
				cur.Communities = append(cur.Communities, m[1]+":"+m[2])
			}
		case strings.HasPrefix(t, "BGP.large_community:"):
			for _, m := range birdLargeRe.FindAllStringSubmatch(t, -1) {
				cur.LargeCommunities = append(cur.LargeCommunities, m[1]+":"+m[2]+":"+m[3])
			}
		case strings.HasPrefix(t, "BGP.med:"):
			if n, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(t, "BGP.med:")), 10, 32); err == nil {
				m := uint32(n)
				cur.MED = &m
			}
		}
	}
	return paths
}

// Session returns BIRD's view of its session with neighbor.
func (b *BIRD) Session(ctx context.Context, neighbor netip.Addr) (Session, error) {
	proto, ok := b.proto[neighbor]
	if !ok {
		return Session{}, fmt.Errorf("lab: %s has no protocol for neighbor %s", b.ns.Name, neighbor)
	}
	out, err := b.Cmd(ctx, "show", "protocols", "all", proto)
	if err != nil {
		return Session{}, err
	}
	var s Session
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[0] == proto {
			// name proto table state since(date time) info
			s.Since = f[4] + " " + f[5]
		}
		t := strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(t, "BGP state:"); ok {
			s.State = strings.TrimSpace(v)
			s.Established = s.State == "Established"
		}
		if v, ok := strings.CutPrefix(t, "Last error:"); ok {
			s.LastReset = strings.TrimSpace(v)
		}
	}
	return s, nil
}

// Received returns the prefixes BIRD accepted from neighbor.
func (b *BIRD) Received(ctx context.Context, neighbor netip.Addr) ([]netip.Prefix, error) {
	proto, ok := b.proto[neighbor]
	if !ok {
		return nil, fmt.Errorf("lab: %s has no protocol for neighbor %s", b.ns.Name, neighbor)
	}
	out, err := b.Cmd(ctx, "show", "route", "protocol", proto)
	if err != nil {
		return nil, err
	}
	var ps []netip.Prefix
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			if p, err := netip.ParsePrefix(f[0]); err == nil {
				ps = append(ps, p)
			}
		}
	}
	sortPrefixes(ps)
	return ps, nil
}

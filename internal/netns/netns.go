package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	vnetns "github.com/vishvananda/netns"
)

// NS is a network namespace created by New. Its methods are safe for
// concurrent use.
type NS struct {
	// Name is the namespace's name under /var/run/netns.
	Name string

	closeOnce sync.Once
	closeErr  error
}

// UniqueID returns a short random hex string for building names that do not
// collide when test packages run in parallel. Interface names are limited to
// 15 bytes, so keep prefixes short.
func UniqueID() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("netns: read random: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// New creates the namespace name, brings its loopback up and enables IPv6
// and IPv4 forwarding inside it (every lab node is a router or a host that
// does not care). It fails if the namespace already exists.
func New(ctx context.Context, name string) (*NS, error) {
	if _, err := os.Stat("/var/run/netns/" + name); err == nil {
		return nil, fmt.Errorf("netns: %s already exists; remove it with `ip netns del %s`", name, name)
	}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("netns: ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	n := &NS{Name: name}
	setup := [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		// Keep addresses when a test takes a link down, so bringing it back
		// up restores the same state (link-cut scenarios).
		{"sysctl", "-qw", "net.ipv6.conf.all.keep_addr_on_down=1"},
		{"sysctl", "-qw", "net.ipv6.conf.default.keep_addr_on_down=1"},
		// Duplicate address detection only delays tests: addresses here are
		// unique by construction.
		{"sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"},
		{"sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"},
	}
	for _, args := range setup {
		if _, err := n.Run(ctx, args...); err != nil {
			_ = n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Run runs a command inside the namespace and returns its standard output.
// On failure the error carries the command line and its standard error.
func (n *NS) Run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := n.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("netns %s: %s: %v: %s", n.Name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// Command returns an unstarted command that runs args inside the namespace.
func (n *NS) Command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"netns", "exec", n.Name}, args...)
	return exec.CommandContext(ctx, "ip", full...)
}

// AddAddr assigns prefix (an address with its prefix length, such as
// 2001:db8:1000:1::2/64) to dev inside the namespace.
func (n *NS) AddAddr(ctx context.Context, dev string, prefix netip.Prefix) error {
	args := []string{"ip", "addr", "add", prefix.String(), "dev", dev}
	if prefix.Addr().Is6() {
		args = append(args, "nodad")
	}
	_, err := n.Run(ctx, args...)
	return err
}

// Close kills every process left in the namespace and deletes it. It is
// safe to call more than once.
func (n *NS) Close() error {
	n.closeOnce.Do(func() {
		ctx := context.Background()
		// Processes keep a namespace alive after `ip netns del`; kill them so
		// their veths and sockets go with it.
		if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", n.Name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.CommandContext(ctx, "kill", "-9", pid).Run()
			}
		}
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			n.closeErr = fmt.Errorf("netns: ip netns del %s: %v: %s", n.Name, err, bytes.TrimSpace(out))
		}
	})
	return n.closeErr
}

// Veth creates a veth pair with one end, aDev, in namespace a and the other,
// bDev, in namespace b, and brings both up.
func Veth(ctx context.Context, a *NS, aDev string, b *NS, bDev string) error {
	if len(aDev) > 15 || len(bDev) > 15 {
		return fmt.Errorf("netns: veth names %q/%q longer than 15 bytes", aDev, bDev)
	}
	if _, err := a.Run(ctx, "ip", "link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", b.Name); err != nil {
		return err
	}
	if _, err := a.Run(ctx, "ip", "link", "set", aDev, "up"); err != nil {
		return err
	}
	_, err := b.Run(ctx, "ip", "link", "set", bDev, "up")
	return err
}

// Path returns the namespace's file, the form DoPath and the datapaths'
// NetNS options take.
func (n *NS) Path() string { return "/var/run/netns/" + n.Name }

// Do runs fn on an OS thread switched into the namespace (see DoPath).
func (n *NS) Do(fn func() error) error { return DoPath(n.Path(), fn) }

// DoPath runs fn on a fresh OS thread switched into the network namespace
// at path (such as /run/netns/edge or /proc/PID/ns/net) and waits for it.
// Sockets and child processes fn creates belong to that namespace for their
// whole life, whichever goroutine uses them later: this is how tests run
// in-process traffic between namespaces, and how nptv6 programs a datapath
// in another namespace. fn must not start goroutines that expect to be in
// the namespace.
func DoPath(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Locked, and if switching back fails never unlocked: the runtime
		// then discards the thread instead of reusing it in the wrong
		// namespace.
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := vnetns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: open %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := vnetns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: enter %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := vnetns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("netns: return from %s: %w", path, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

package main

// What every mhlab command does around its own steps: check for root, bring
// a lab up and tear it down, write a config and start the daemon, stop it.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// rootDaemon checks that mhlab runs as root (it builds network namespaces)
// and returns the daemon binary's absolute path: the daemon is started from
// inside a namespace, so a relative path would not be found.
func rootDaemon(daemonPath string) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("needs root (network namespaces); run it with sudo")
	}
	return filepath.Abs(daemonPath)
}

// upLab announces what is being built, builds it with up, and returns it
// with its teardown, which announces itself too. Call the teardown with
// defer once err is nil.
func upLab[L interface{ Close() }](what string, up func() (L, error)) (L, func(), error) {
	step("%s", what)
	l, err := up()
	if err != nil {
		return l, nil, err
	}
	return l, func() {
		step("Tearing the lab down")
		l.Close()
	}, nil
}

// echoTo is where the daemon's log is echoed: stdout when verbose, else
// nowhere. It returns a nil interface, not a nil *os.File, which would be a
// non-nil writer.
func echoTo(verbose bool) io.Writer {
	if verbose {
		return os.Stdout
	}
	return nil
}

// startDaemon writes cfgText to cfgPath and starts the daemon in ns with
// that config.
func startDaemon(ctx context.Context, ns *netns.NS, daemonPath, cfgPath, cfgText string, echo io.Writer) (*lab.Daemon, error) {
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	return lab.StartDaemon(ctx, ns, daemonPath, cfgPath, echo)
}

// startSteady waits until the lab has converged (lab.AwaitISPs), writes
// cfgText to dir/multihomed.yaml, starts the daemon in l's edge and waits
// (up to 2 minutes) until the transit hears the site via both ISPs and the
// edge's default leaves by eth-a. When that steady
// state does not come it stops the daemon and returns its log in the
// error; otherwise the caller stops it.
func startSteady(ctx context.Context, l *lab.Lab, daemonPath, dir, cfgText string, verbose bool) (*lab.Daemon, error) {
	// On a converged lab only: the daemon keeps probes lost before the
	// ISPs reach the internet host in its loss window (see AwaitISPs).
	if _, err := l.AwaitISPs(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	d, err := startDaemon(ctx, l.Edge, daemonPath, filepath.Join(dir, "multihomed.yaml"), cfgText, echoTo(verbose))
	if err != nil {
		return nil, err
	}
	if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 120*time.Second); err != nil {
		_ = d.Stop(10 * time.Second)
		return nil, fmt.Errorf("steady state: %w; daemon log:\n%s", err, d.Log())
	}
	return d, nil
}

// stopDaemon stops d and prints why when it did not stop cleanly.
func stopDaemon(d *lab.Daemon) {
	if err := d.Stop(10 * time.Second); err != nil {
		fmt.Println("   daemon:", err)
	}
}

// startPADNS starts the PA lab's DNS primary with a fresh TSIG secret whose
// key file it writes into dir and, for the ebpf backend, mounts a bpffs
// under dir for the daemon's pinned maps. It returns the key file, the pin
// path ("" for the kernel backend) and what undoes the mount (nothing to
// undo for the kernel backend).
func startPADNS(ctx context.Context, l *lab.PALab, dir, backend string) (keyFile, pin string, unmount func(), err error) {
	unmount = func() {}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", "", unmount, err
	}
	if err := l.StartBIND(ctx, lab.PABIND{Secret: secret, Dynamic: true}); err != nil {
		return "", "", unmount, err
	}
	if keyFile, err = lab.WriteKeyFile(dir, secret); err != nil {
		return "", "", unmount, err
	}
	if backend == "ebpf" {
		if unmount, err = lab.MountBPFFS(filepath.Join(dir, "bpffs")); err != nil {
			return "", "", func() {}, err
		}
		pin = filepath.Join(dir, "bpffs", "nptv6")
	}
	return keyFile, pin, unmount, nil
}

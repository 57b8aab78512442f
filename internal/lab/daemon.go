package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// Daemon is a multihomed process running inside a namespace.
type Daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu  sync.Mutex
	log bytes.Buffer
}

// StartDaemon runs `binary run --config configPath` inside ns as the
// caller (root, for mhlab). Its output is kept (see Log) and copied to echo
// if echo is not nil. Tests use StartDaemonAs.
func StartDaemon(ctx context.Context, ns *netns.NS, binary, configPath string, echo io.Writer) (*Daemon, error) {
	return StartDaemonAs(ctx, ns, nil, binary, configPath, echo)
}

// StartDaemonAs is StartDaemon run as id, an unprivileged user with only
// id.Caps (see Identity), when id is not nil. binary, configPath and the
// state and socket directories the configuration names must be reachable
// by that user: the daemon has no CAP_DAC_OVERRIDE.
func StartDaemonAs(ctx context.Context, ns *netns.NS, id *Identity, binary, configPath string, echo io.Writer) (*Daemon, error) {
	argv := []string{binary, "run", "--config", configPath}
	if id != nil {
		argv = id.wrap(argv...)
	}
	return startProcess(ctx, ns, nil, echo, argv...)
}

// startProcess runs args inside ns with env added to this process's
// environment, keeping its output like StartDaemon. The process outlives
// ctx: stop it with Stop.
func startProcess(ctx context.Context, ns *netns.NS, env []string, echo io.Writer, args ...string) (*Daemon, error) {
	d := &Daemon{done: make(chan struct{})}
	d.cmd = ns.Command(context.WithoutCancel(ctx), args...)
	if env != nil {
		d.cmd.Env = append(os.Environ(), env...)
	}
	var w io.Writer = logWriter{d}
	if echo != nil {
		w = io.MultiWriter(w, echo)
	}
	d.cmd.Stdout, d.cmd.Stderr = w, w
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s in %s: %w", args[0], ns.Name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

type logWriter struct{ d *Daemon }

func (w logWriter) Write(p []byte) (int, error) {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.log.Write(p)
}

// Log returns everything the daemon printed so far.
func (d *Daemon) Log() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// Signal sends sig to the daemon. `ip netns exec` execs the daemon in place,
// so the process is the daemon itself.
func (d *Daemon) Signal(sig os.Signal) error { return d.cmd.Process.Signal(sig) }

// Pid returns the daemon's process id (see Signal: it is the daemon's own,
// not a wrapper's), for reading /proc/PID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the daemon exits.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
// It returns the exit error of a daemon that did not exit cleanly.
func (d *Daemon) Stop(timeout time.Duration) error {
	if stopProcess(d.cmd.Process, d.done, timeout) {
		return fmt.Errorf("lab: daemon did not stop within %s after SIGTERM; killed", timeout)
	}
	return d.err
}

// stopProcess ends p, whose exit closes done: SIGTERM, then SIGKILL when it
// has not exited within timeout. It returns once p has exited, and reports
// whether it had to kill. A process that has already exited is left alone.
func stopProcess(p *os.Process, done <-chan struct{}, timeout time.Duration) (killed bool) {
	select {
	case <-done:
		return false
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return false
	case <-time.After(timeout):
		_ = p.Kill()
		<-done
		return true
	}
}

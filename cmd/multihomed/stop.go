package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/multihomed/multihomed/config"
)

// pidFileName is the daemon's pid file in controller.state_dir; `multihomed
// stop` finds the daemon through it.
const pidFileName = "multihomed.pid"

// writePidFile records our pid in dir (temporary file, rename) and returns
// a function that removes it again if it still names us.
func writePidFile(dir string) (func(), error) {
	path := filepath.Join(dir, pidFileName)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, pidFileName+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	defer os.Remove(tmp.Name())
	me := strconv.Itoa(os.Getpid()) + "\n"
	if _, err := tmp.WriteString(me); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() {
		if data, err := os.ReadFile(path); err == nil && string(data) == me {
			os.Remove(path)
		}
	}, nil
}

// daemonPid reads the pid file in dir and checks that the process is a
// running multihomed (same command name as ours), not a reused pid.
func daemonPid(dir string) (int, error) {
	path := filepath.Join(dir, pidFileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("%w (is the daemon running with this state_dir?)", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s does not hold a pid; remove it", path)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return 0, fmt.Errorf("%s names pid %d, which is not running; remove the file", path, pid)
	}
	self, _ := os.ReadFile("/proc/self/comm")
	if !bytes.Equal(comm, self) {
		return 0, fmt.Errorf("%s names pid %d, which is %q, not multihomed; remove the file", path, pid, strings.TrimSpace(string(comm)))
	}
	return pid, nil
}

func newStopCmd() *cobra.Command {
	var (
		path     string
		withdraw bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the running daemon (a restart keeps the ISPs' routes; --withdraw takes the site out of service)",
		Long: `stop signals the daemon named by controller.state_dir/multihomed.pid and waits for it to exit.

Without --withdraw it sends SIGTERM: the BGP sessions close with graceful-restart
semantics, the ISPs keep the site's routes as stale for bgp.restart_time and the
kernel keeps the egress routes, so a daemon started again at once loses nothing.
With --withdraw it sends SIGUSR2: the daemon announces GRACEFUL_SHUTDOWN on every
uplink for controller.drain_grace, withdraws everywhere, removes its egress routes,
then exits 0. Use it when the edge goes out of service for good.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, nil)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return err
			}
			pid, err := daemonPid(cfg.Controller.StateDir)
			if err != nil {
				return err
			}
			sig, what := syscall.SIGTERM, "stop (the ISPs keep the routes for bgp.restart_time)"
			if withdraw {
				sig, what = syscall.SIGUSR2, "decommission (drain, withdraw everywhere, exit)"
			}
			if timeout == 0 {
				timeout = 30 * time.Second
				if withdraw {
					timeout += cfg.Controller.DrainGrace
				}
			}
			if err := syscall.Kill(pid, sig); err != nil {
				return fmt.Errorf("signal pid %d: %w", pid, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "multihomed (pid %d): %s requested; waiting up to %s\n", pid, what, timeout)
			deadline := time.Now().Add(timeout)
			for {
				if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
					fmt.Fprintf(cmd.OutOrStdout(), "multihomed (pid %d) exited\n", pid)
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("pid %d still runs after %s; see its log", pid, timeout)
				}
				time.Sleep(100 * time.Millisecond)
			}
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/multihomed/multihomed.yaml", "configuration file (for controller.state_dir)")
	cmd.Flags().BoolVar(&withdraw, "withdraw", false, "take the site out of service: drain, withdraw everywhere, then exit")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait for the exit (default 30s, plus controller.drain_grace with --withdraw)")
	return cmd
}

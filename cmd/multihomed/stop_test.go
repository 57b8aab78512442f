package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPidFile: the daemon's pid file names this process, daemonPid finds
// it, and the cleanup removes it only while it still names us.
func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	remove, err := writePidFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := daemonPid(dir); err != nil || pid != os.Getpid() {
		t.Fatalf("daemonPid = %d, %v; want %d", pid, err, os.Getpid())
	}
	remove()
	if _, err := os.Stat(filepath.Join(dir, pidFileName)); !os.IsNotExist(err) {
		t.Fatalf("pid file after cleanup: %v", err)
	}
	// A file another daemon rewrote meanwhile is left alone.
	remove, err = writePidFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, pidFileName), []byte("12345\n"), 0o644)
	remove()
	if _, err := os.Stat(filepath.Join(dir, pidFileName)); err != nil {
		t.Fatalf("cleanup removed another daemon's pid file: %v", err)
	}
}

// TestDaemonPidRefusesOtherProcesses: a pid file naming a process that is
// not multihomed (pid 1, init), or holding no pid, is refused with the
// file named.
func TestDaemonPidRefusesOtherProcesses(t *testing.T) {
	self, _ := os.ReadFile("/proc/self/comm")
	init, err := os.ReadFile("/proc/1/comm")
	if err != nil || string(init) == string(self) {
		t.Skip("pid 1 is not readable or has our name")
	}
	for _, content := range []string{"1\n", "not a pid\n"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, pidFileName), []byte(content), 0o644)
		_, err := daemonPid(dir)
		if err == nil || !strings.Contains(err.Error(), pidFileName) {
			t.Errorf("pid file %q: %v; want an error naming the file", strings.TrimSpace(content), err)
		}
	}
}

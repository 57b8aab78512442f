package nptv6

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/lab"
)

// bpffs mounts a private bpffs for one test and unmounts it at the end, so
// tests never touch the host's /sys/fs/bpf and never see each other's pins.
func bpffs(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nptv6-bpffs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		os.Remove(dir)
		t.Fatalf("mount bpffs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	return dir
}

// ebpfBackend builds the eBPF datapath for a topology's edge, pinned in a
// bpffs of its own.
func ebpfBackend() backend { return ebpfBackendMode("ebpf", false) }

func ebpfBackendMode(name string, forceTC bool) backend {
	return backend{name: name, new: func(t *testing.T, topo *lab.Translator) Datapath {
		pin := filepath.Join(bpffs(t), "nptv6")
		e, err := NewEBPF(EBPFOptions{PinPath: pin, NetNS: topo.Edge.Path(), ForceTC: forceTC})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := e.Purge(context.Background()); err != nil {
				t.Errorf("purge: %v", err)
			}
			e.Close()
		})
		return e
	}}
}

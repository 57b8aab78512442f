package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/nptv6"
)

func TestTranslateCommand(t *testing.T) {
	if err := run(context.Background(), []string{"translate", "fd01:203:405::/48", "2001:db8:1::/48", "fd01:203:405:1::1234"}); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"translate", "fd01:203:405::/48", "2001:db8:1::/48", "fd01:203:405:ffff::1"})
	if err == nil || !strings.Contains(err.Error(), "0xFFFF") {
		t.Fatalf("subnet 0xFFFF: err = %v, want the drop reason", err)
	}
}

func TestParseMapping(t *testing.T) {
	m, err := parseMapping([]string{"isp-a", "fd7a:5e1d:9c00::/48", "2001:db8:1001::/48", "hairpin"})
	if err != nil || !m.Hairpin || m.Interface != "isp-a" {
		t.Fatalf("parseMapping = %+v, %v", m, err)
	}
	for _, bad := range [][]string{
		{"isp-a", "fd7a:5e1d:9c00::/48"},
		{"isp-a", "fd7a:5e1d:9c00::1/48", "2001:db8:1001::/48"},
		{"isp-a", "fd7a:5e1d:9c00::/48", "2001:db8:1001::/48", "yes"},
	} {
		if _, err := parseMapping(bad); err == nil {
			t.Errorf("parseMapping(%q) accepted", bad)
		}
	}
}

// TestAddListRemove drives the command against a lab edge namespace with
// both backends and reads the result back through the library.
func TestAddListRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("needs root for network namespaces and eBPF; skipped because CI is not set")
		}
		t.Fatal("needs root, and CI is set: it must run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := lab.UpTranslator(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topo.Close() })
	dir, err := os.MkdirTemp("", "nptv6ctl-bpffs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH); os.Remove(dir) })
	pin := filepath.Join(dir, "nptv6")
	netns := topo.Edge.Path()
	m := []string{topo.EdgeUpIf, "fd7a:5e1d:9c00::/48", "2001:db8:1001::/48"}
	for _, backend := range []string{"ebpf", "kernel"} {
		t.Run(backend, func(t *testing.T) {
			flags := []string{"-backend", backend, "-pin", pin, "-netns", netns}
			open := func() nptv6.Datapath {
				var dp nptv6.Datapath
				var err error
				if backend == "ebpf" {
					dp, err = nptv6.NewEBPF(nptv6.EBPFOptions{PinPath: pin, NetNS: netns})
				} else {
					dp, err = nptv6.NewKernel(nptv6.KernelOptions{NetNS: netns})
				}
				if err != nil {
					t.Fatal(err)
				}
				return dp
			}
			if err := run(ctx, append(append(flags, "add"), m...)); err != nil {
				t.Fatalf("add: %v", err)
			}
			dp := open()
			defer dp.Close()
			got, err := dp.Mappings(ctx)
			if err != nil || len(got) != 1 || got[0].Interface != topo.EdgeUpIf || got[0].External.String() != m[2] {
				t.Fatalf("after add: %v, %v", got, err)
			}
			if err := run(ctx, append(flags, "list")); err != nil {
				t.Fatalf("list: %v", err)
			}
			if err := run(ctx, append(append(flags, "remove"), m...)); err != nil {
				t.Fatalf("remove: %v", err)
			}
			if got, err := dp.Mappings(ctx); err != nil || len(got) != 0 {
				t.Fatalf("after remove: %v, %v", got, err)
			}
			if err := run(ctx, append(append(flags, "remove"), m...)); err == nil {
				t.Fatal("removing a mapping that is not there succeeded")
			}
			if err := run(ctx, append(flags, "purge")); err != nil {
				t.Fatalf("purge: %v", err)
			}
		})
	}
}

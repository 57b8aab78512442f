package fib

import (
	"context"
	"testing"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestNexthopCompatMode reads the setting in a namespace of its own, where
// it starts at the kernel default and is then turned off.
func TestNexthopCompatMode(t *testing.T) {
	testenv.Need(t, "ip", "sysctl")
	ctx := context.Background()
	n, err := netns.New(ctx, "fc"+netns.UniqueID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	read := func() (on, known bool) {
		t.Helper()
		var err error
		if derr := n.Do(func() error { on, known, err = NexthopCompatMode(); return nil }); derr != nil {
			t.Fatal(derr)
		}
		if err != nil {
			t.Fatal(err)
		}
		return on, known
	}
	on, known := read()
	if !known {
		if testenv.InCI() {
			t.Fatal("CI's kernel has no net.ipv4.nexthop_compat_mode")
		}
		t.Skip("this kernel has no net.ipv4.nexthop_compat_mode (older kernels lack it)")
	}
	if !on {
		t.Fatal("a fresh namespace reads nexthop_compat_mode off; the kernel default is 1")
	}
	if _, err := n.Run(ctx, "sysctl", "-w", "net.ipv4.nexthop_compat_mode=0"); err != nil {
		t.Fatal(err)
	}
	if on, _ := read(); on {
		t.Error("after sysctl -w net.ipv4.nexthop_compat_mode=0 it still reads on")
	}
}

package netns

import (
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/multihomed/multihomed/internal/testenv"
)

// TestVethNamespaces links two namespaces and checks that Run and Do act
// inside the one they name (each sees only its own veth end and address),
// that New refuses an existing name and that Close removes the namespace.
func TestVethNamespaces(t *testing.T) {
	testenv.Need(t, "ip", "ping")
	ctx := context.Background()
	id := UniqueID()
	a, err := New(ctx, "t"+id+"a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	b, err := New(ctx, "t"+id+"b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })

	if err := Veth(ctx, a, "va"+id, b, "vb"+id); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr(ctx, "va"+id, netip.MustParsePrefix("2001:db8:77::1/64")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr(ctx, "vb"+id, netip.MustParsePrefix("2001:db8:77::2/64")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, "ping", "-6", "-c1", "-W2", "2001:db8:77::2"); err != nil {
		t.Fatalf("ping across veth: %v", err)
	}
	// Each namespace holds its own end of the veth and its own address, and
	// this process's namespace holds neither: a Run or Do that ran anywhere
	// else would see other interfaces.
	for _, c := range []struct {
		ns            *NS
		dev, other    string
		addr, notAddr string
	}{{a, "va" + id, "vb" + id, "2001:db8:77::1/64", "2001:db8:77::2/64"}, {b, "vb" + id, "va" + id, "2001:db8:77::2/64", "2001:db8:77::1/64"}} {
		out, err := c.ns.Run(ctx, "ip", "-o", "-6", "addr", "show")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), " "+c.dev+" ") || !strings.Contains(string(out), c.addr) {
			t.Errorf("Run in %s: `ip addr show` lacks %s with %s, so it did not run there:\n%s", c.ns.Name, c.dev, c.addr, out)
		}
		if strings.Contains(string(out), " "+c.other+" ") || strings.Contains(string(out), c.notAddr) {
			t.Errorf("Run in %s: `ip addr show` lists the peer's %s or %s:\n%s", c.ns.Name, c.other, c.notAddr, out)
		}
		var addrs []netip.Prefix
		if err := c.ns.Do(func() error {
			ifi, err := net.InterfaceByName(c.dev)
			if err != nil {
				return err
			}
			as, err := ifi.Addrs()
			for _, x := range as {
				if ipn, ok := x.(*net.IPNet); ok {
					ip, _ := netip.AddrFromSlice(ipn.IP)
					ones, _ := ipn.Mask.Size()
					addrs = append(addrs, netip.PrefixFrom(ip.Unmap(), ones))
				}
			}
			return err
		}); err != nil {
			t.Fatalf("Do in %s: %v", c.ns.Name, err)
		}
		if !slices.Contains(addrs, netip.MustParsePrefix(c.addr)) {
			t.Errorf("Do in %s: %s has %v, want %s among them", c.ns.Name, c.dev, addrs, c.addr)
		}
		if _, err := net.InterfaceByName(c.dev); err == nil {
			t.Errorf("%s is visible in the test's own namespace: the veth was not created inside %s", c.dev, c.ns.Name)
		}
	}

	if _, err := New(ctx, a.Name); err == nil {
		t.Fatal("New on an existing namespace succeeded")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/var/run/netns/" + a.Name); !os.IsNotExist(err) {
		t.Fatalf("namespace %s still present after Close: %v", a.Name, err)
	}
}

package netns

import (
	"context"
	"net/netip"
	"os"
	"testing"

	"github.com/multihomed/multihomed/internal/testenv"
)

func TestVethPing(t *testing.T) {
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
	// The peer namespace must not see the address of the other: proves the
	// commands really ran inside each namespace.
	if _, err := b.Run(ctx, "ping", "-6", "-c1", "-W1", "2001:db8:78::1"); err == nil {
		t.Fatal("ping to an unassigned address succeeded")
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

package lab

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/netns/netnstest"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestStartBINDInNamespace runs BIND on an address only the namespace has:
// dig from inside gets the zone's SOA, dig from here cannot reach it, and
// Close stops named and removes its directory.
func TestStartBINDInNamespace(t *testing.T) {
	testenv.Need(t, "named", "dig", "ip")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := netnstest.New(t, "mhbind-"+netns.UniqueID())
	addr := netip.MustParseAddr("2001:db8:53::1")
	if err := ns.AddAddr(ctx, "lo", netip.PrefixFrom(addr, 128)); err != nil {
		t.Fatal(err)
	}
	b, err := StartBIND(ctx, BINDConfig{
		NS:      ns,
		Listen:  netip.AddrPortFrom(addr, 53),
		KeyName: "mh-update",
		Secret:  []byte("lab-secret-0123456789abcdef-0123"),
		Zones:   []BINDZone{{Name: "site.example", Dynamic: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)

	out, err := b.Dig(ctx, ns, "site.example.", "SOA")
	if err != nil || !strings.HasPrefix(string(out), "ns.site.example. hostmaster.site.example. 1 ") {
		t.Fatalf("SOA from inside the namespace: %q, %v", out, err)
	}
	if out, err := b.Dig(ctx, nil, "site.example.", "SOA"); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("named answered outside its namespace: %q", out)
	}
	conf, err := os.ReadFile(b.Dir + "/named.conf")
	if err != nil || !strings.Contains(string(conf), `update-policy { grant "mh-update" zonesub AAAA; };`) {
		t.Errorf("named.conf lacks the update policy: %v\n%s", err, conf)
	}

	b.Close()
	if _, err := os.Stat(b.Dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left after Close: %v", b.Dir, err)
	}
	if out, err := b.Dig(ctx, ns, "site.example.", "SOA"); err == nil {
		t.Errorf("named still answers after Close: %q", out)
	}
}

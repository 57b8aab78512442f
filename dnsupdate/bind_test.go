package dnsupdate

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/testenv"
	"github.com/multihomed/multihomed/nptv6/rfc6296"
	"github.com/multihomed/multihomed/routing"
)

var (
	labSecret   = []byte("lab-secret-0123456789abcdef-0123")
	wrongSecret = []byte("wrong-secret-0123456789abcdef-01")
	// Arbitrary addresses of the PA prefixes: the tests here are about
	// what the server publishes, not how NPTv6 maps a host
	// (TestSetFollowsUplinks computes real mappings).
	addrA   = netip.MustParseAddr("2001:db8:1001:1::80")
	addrB   = netip.MustParseAddr("2001:db8:2001:1::80")
	addrC   = netip.MustParseAddr("2001:db8:3001:1::80")
	addrAPI = netip.MustParseAddr("2001:db8:1001:1::81")
)

// startBIND runs a BIND 9 primary on a free loopback port serving the
// dynamic zone site.example and the static zone static.example. dir keeps
// its state across restarts; listen's port 0 picks one.
func startBIND(t *testing.T, dir string, listen netip.AddrPort, secret []byte) *lab.BIND {
	t.Helper()
	testenv.Need(t, "named", "dig")
	b, err := lab.StartBIND(context.Background(), lab.BINDConfig{
		Listen:  listen,
		KeyName: "mh-update",
		Secret:  secret,
		Zones:   []lab.BINDZone{{Name: "site.example", Dynamic: true}, {Name: "static.example"}},
		Dir:     dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newUpdater(t *testing.T, zone string, server netip.AddrPort, secret []byte) *Updater {
	t.Helper()
	u, err := New(Config{
		Zone: zone, Server: server, KeyName: "mh-update", Secret: secret,
		Timeout: 2 * time.Second,
		Hosts: []Host{
			{Name: "www", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::80")},
			{Name: "api", Internal: netip.MustParseAddr("fd7a:5e1d:9c00:1::81")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// countUpdates makes u count the UPDATE messages it sends.
func countUpdates(u *Updater) *atomic.Int32 {
	var n atomic.Int32
	inner := u.exchange
	u.exchange = func(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
		if m.Opcode == dns.OpcodeUpdate {
			n.Add(1)
		}
		return inner(ctx, m)
	}
	return &n
}

// served asks the server itself (with dig, not our code) for name's AAAA
// records.
func served(t *testing.T, b *lab.BIND, name string) []netip.Addr {
	t.Helper()
	out, err := b.Dig(context.Background(), nil, name, "AAAA")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for _, f := range strings.Fields(string(out)) {
		addrs = append(addrs, netip.MustParseAddr(f))
	}
	return routing.AddrSet(addrs)
}

func digSOA(t *testing.T, b *lab.BIND, name string) string {
	t.Helper()
	out, err := b.Dig(context.Background(), nil, name, "SOA")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestSetAddChangeRemove(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	u := newUpdater(t, "site.example", b.Addr, labSecret)
	updates := countUpdates(u)
	ctx := context.Background()

	steps := []struct {
		name string
		want map[string][]netip.Addr
	}{
		{"add", map[string][]netip.Addr{"www": {addrB, addrA}, "api": {addrAPI}}},
		{"change", map[string][]netip.Addr{"www": {addrA, addrC}, "api": {addrAPI}}},
		{"remove one host", map[string][]netip.Addr{"www": {addrC}}},
		{"remove all", map[string][]netip.Addr{}},
	}
	for _, st := range steps {
		before := updates.Load()
		got, err := u.Set(ctx, st.want)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if updates.Load() != before+1 {
			t.Fatalf("%s: sent %d UPDATEs, want 1", st.name, updates.Load()-before)
		}
		for _, host := range []string{"www", "api"} {
			want := routing.AddrSet(st.want[host])
			if s := served(t, b, host+".site.example."); !slices.Equal(s, want) {
				t.Errorf("%s: server holds %s = %v, want %v", st.name, host, s, want)
			}
			if !slices.Equal(got[host], want) {
				t.Errorf("%s: Set returned %s = %v, want %v", st.name, host, got[host], want)
			}
		}

		// Idempotence: the same state again reads, finds nothing to do and
		// sends nothing; the zone's serial stays.
		soa := digSOA(t, b, "site.example.")
		if _, err := u.Set(ctx, st.want); err != nil {
			t.Fatalf("%s again: %v", st.name, err)
		}
		if updates.Load() != before+1 {
			t.Errorf("%s again: sent an UPDATE for an unchanged state", st.name)
		}
		if again := digSOA(t, b, "site.example."); again != soa {
			t.Errorf("%s again: SOA changed from %q to %q", st.name, soa, again)
		}
	}
}

func TestSetTTL(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	u := newUpdater(t, "site.example", b.Addr, labSecret)
	if _, err := u.Set(context.Background(), map[string][]netip.Addr{"www": {addrA}}); err != nil {
		t.Fatal(err)
	}
	// dig +short hides TTLs: ask with our reader, which reports them.
	s, err := u.read(context.Background(), "www.site.example.")
	if err != nil {
		t.Fatal(err)
	}
	if s.ttl != uint32(DefaultTTL/time.Second) {
		t.Errorf("TTL %d, want %d", s.ttl, DefaultTTL/time.Second)
	}

	// A changed TTL is a difference: the records are rewritten with it.
	u.cfg.ttl = 60
	updates := countUpdates(u)
	if _, err := u.Set(context.Background(), map[string][]netip.Addr{"www": {addrA}}); err != nil {
		t.Fatal(err)
	}
	if updates.Load() != 1 {
		t.Errorf("TTL change sent %d UPDATEs, want 1", updates.Load())
	}
	if s, err = u.read(context.Background(), "www.site.example."); err != nil || s.ttl != 60 {
		t.Errorf("after TTL change: ttl %d, err %v; want 60", s.ttl, err)
	}
}

// TestSetConflict changes the records between our read and our UPDATE: the
// prerequisite must fail the update, so the other writer's change stays.
func TestSetConflict(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	ctx := context.Background()
	u := newUpdater(t, "site.example", b.Addr, labSecret)
	other := newUpdater(t, "site.example", b.Addr, labSecret)
	if _, err := u.Set(ctx, map[string][]netip.Addr{"www": {addrA}}); err != nil {
		t.Fatal(err)
	}
	inner := u.exchange
	u.exchange = func(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
		if m.Opcode == dns.OpcodeUpdate {
			if _, err := other.Set(ctx, map[string][]netip.Addr{"www": {addrC}}); err != nil {
				t.Errorf("other writer: %v", err)
			}
		}
		return inner(ctx, m)
	}
	_, err := u.Set(ctx, map[string][]netip.Addr{"www": {addrA, addrB}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("Set after a concurrent change: %v, want ErrConflict", err)
	}
	if s := served(t, b, "www.site.example."); !slices.Equal(s, []netip.Addr{addrC}) {
		t.Errorf("server holds %v, want the other writer's %v", s, addrC)
	}
	// The next attempt reads again and wins.
	u.exchange = inner
	if _, err := u.Set(ctx, map[string][]netip.Addr{"www": {addrA, addrB}}); err != nil {
		t.Fatal(err)
	}
	if s := served(t, b, "www.site.example."); !slices.Equal(s, sorted(addrA, addrB)) {
		t.Errorf("server holds %v after retry", s)
	}
}

func TestSetErrors(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	ctx := context.Background()
	want := map[string][]netip.Addr{"www": {addrA}}
	for _, tc := range []struct {
		name     string
		u        *Updater
		sentinel error
		text     string
	}{
		{"bad key", newUpdater(t, "site.example", b.Addr, wrongSecret), ErrBadKey, "BADSIG"},
		{"zone not dynamic", newUpdater(t, "static.example", b.Addr, labSecret), ErrRefused, "grant key mh-update."},
		{"zone not served", newUpdater(t, "other.example", b.Addr, labSecret), ErrRefused, "does not answer for zone other.example."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.u.Set(ctx, want)
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Set: %v; want %v mentioning %q", err, tc.sentinel, tc.text)
			}
			t.Logf("error seen by users: %v", err)
		})
	}
	if s := served(t, b, "www.site.example."); len(s) != 0 {
		t.Errorf("a failed update published %v", s)
	}

	// Nothing listens: unreachable, quickly.
	u := newUpdater(t, "site.example", netip.MustParseAddrPort("127.0.0.1:1"), labSecret)
	if _, err := u.Set(ctx, want); !errors.Is(err, ErrUnreachable) {
		t.Errorf("no server: %v, want ErrUnreachable", err)
	}
}

// TestSetFollowsUplinks: a sequence of desired sets as the controller
// hands them over when uplinks fail and recover (one PA address per usable
// uplink, all of them when none is: controller's desiredDNS) converges the
// server to each in turn, removing and adding back addresses.
func TestSetFollowsUplinks(t *testing.T) {
	b := startBIND(t, "", netip.MustParseAddrPort("127.0.0.1:0"), labSecret)
	u := newUpdater(t, "site.example", b.Addr, labSecret)
	// The PA addresses of two inside hosts as each uplink's NPTv6 maps
	// them (what controller's desiredDNS publishes): computed, since the
	// checksum-neutral mapping changes more than the prefix.
	www, api := netip.MustParseAddr("fd7a:5e1d:9c00:1::80"), netip.MustParseAddr("fd7a:5e1d:9c00:1::81")
	viaA, apiA := paAddrs(t, lab.PAInternal, lab.PAPrefixA, www, api)
	viaB, apiB := paAddrs(t, lab.PAInternal, lab.PAPrefixB, www, api)
	for _, st := range []struct {
		name    string
		want    []netip.Addr
		wantAPI []netip.Addr
	}{
		{"both up", sorted(viaA, viaB), sorted(apiA, apiB)},
		{"isp-a fails", []netip.Addr{viaB}, []netip.Addr{apiB}},
		{"isp-a recovers", sorted(viaA, viaB), sorted(apiA, apiB)},
		{"isp-b fails", []netip.Addr{viaA}, []netip.Addr{apiA}},
		{"both fail: fail-static", sorted(viaA, viaB), sorted(apiA, apiB)},
	} {
		if _, err := u.Set(context.Background(), map[string][]netip.Addr{"www": st.want, "api": st.wantAPI}); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if s := served(t, b, "api.site.example."); !slices.Equal(s, st.wantAPI) {
			t.Errorf("%s: server answers %v for api, want %v", st.name, s, st.wantAPI)
		}
		if s := served(t, b, "www.site.example."); !slices.Equal(s, st.want) {
			t.Errorf("%s: server answers %v, want %v", st.name, s, st.want)
		}
	}
}

func sorted(a ...netip.Addr) []netip.Addr { return routing.AddrSet(a) }

// paAddrs maps the inside hosts www and api to the PA prefix pa, as the
// uplink's NPTv6 translator does outbound.
func paAddrs(t *testing.T, inside, pa netip.Prefix, www, api netip.Addr) (netip.Addr, netip.Addr) {
	t.Helper()
	tr, err := rfc6296.NewTranslator(routing.NPTMapping{Internal: inside, External: pa})
	if err != nil {
		t.Fatal(err)
	}
	w, err := tr.Outbound(www)
	if err != nil {
		t.Fatal(err)
	}
	a, err := tr.Outbound(api)
	if err != nil {
		t.Fatal(err)
	}
	return w, a
}

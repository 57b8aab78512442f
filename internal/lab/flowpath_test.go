package lab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

func TestParseFlowCounts(t *testing.T) {
	// The shape of `nft -j list table inet mhpath` (nftables 1.0.6).
	const listed = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
{"table": {"family": "inet", "name": "mhpath", "handle": 3}},
{"counter": {"family": "inet", "name": "a_to_b", "table": "mhpath", "handle": 2, "packets": 1234, "bytes": 98720}},
{"counter": {"family": "inet", "name": "b_to_a", "table": "mhpath", "handle": 3, "packets": 17, "bytes": 1360}},
{"chain": {"family": "inet", "table": "mhpath", "name": "count", "handle": 1, "type": "filter", "hook": "forward", "prio": -10, "policy": "accept"}}]}`
	got, err := parseFlowCounts([]byte(listed))
	if err != nil {
		t.Fatal(err)
	}
	if got != [2]uint64{1234, 17} {
		t.Errorf("parseFlowCounts = %v, want [1234 17]", got)
	}
	// A table without the counters (someone else's, or an older one)
	// must not read as "nothing forwarded".
	_, err = parseFlowCounts([]byte(`{"nftables": [{"table": {"family": "inet", "name": "mhpath", "handle": 3}},
{"counter": {"family": "inet", "name": "a_to_b", "table": "mhpath", "handle": 2, "packets": 5, "bytes": 400}}]}`))
	if err == nil || !strings.Contains(err.Error(), `"b_to_a"`) {
		t.Errorf("a missing counter gave %v, want an error naming it", err)
	}
}

func TestFlowPathViaISPA(t *testing.T) {
	for _, c := range []struct {
		name string
		p    FlowPath
		want bool
	}{
		{"both ways via A", FlowPath{ISPA: [2]uint64{150, 150}}, true},
		{"inbound via B (the transit prefers B)", FlowPath{ISPA: [2]uint64{0, 150}, ISPB: [2]uint64{150, 0}}, false},
		{"both ways via B", FlowPath{ISPB: [2]uint64{150, 150}}, false},
		{"moving: one packet still via B", FlowPath{ISPA: [2]uint64{149, 150}, ISPB: [2]uint64{1, 0}}, false},
		{"nothing forwarded (flow stopped)", FlowPath{}, false},
	} {
		if got := c.p.ViaISPA(); got != c.want {
			t.Errorf("%s: ViaISPA(%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestMissed(t *testing.T) {
	hit := CompareDir{Sent: 1000, Lost: 385, LossWindow: 770 * time.Millisecond}
	both := [2]bool{true, true}
	if err := missed([2]CompareDir{hit, hit}, both); err != nil {
		t.Errorf("a run that lost both ways: %v", err)
	}
	// The first default-profile run of docs/benchmarks.md: 0 lost.
	err := missed([2]CompareDir{{Sent: 1000}, hit}, both)
	if err == nil || !strings.Contains(err.Error(), "inbound lost none of 1000") || strings.Contains(err.Error(), "outbound") {
		t.Errorf("inbound lost nothing: got %v, want an error naming inbound only", err)
	}
	// A link cut: the edge's kernel may move outbound without a loss.
	if err := missed([2]CompareDir{hit, {Sent: 1000}}, [2]bool{true, false}); err != nil {
		t.Errorf("outbound lost nothing where it need not: %v", err)
	}
	if err := missed([2]CompareDir{{Sent: 1000}, {Sent: 1000}}, [2]bool{}); err != nil {
		t.Errorf("a planned restart that lost nothing: %v", err)
	}
}

// TestCountFlow checks, on real nft, that countFlow's counters see the
// flow's packets each way on the router that forwards them and nothing on
// one that does not, which is all AwaitFlowViaISPA decides on: two hosts
// joined by router r, and router idle beside them.
func TestCountFlow(t *testing.T) {
	testenv.Need(t, "ip", "nft")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := netns.UniqueID()
	l := &Lab{}
	t.Cleanup(l.Close)
	var a, r, b, idle *netns.NS
	if err := l.newNamespaces(ctx, id, []nsNode{{&a, "ca"}, {&r, "cr"}, {&b, "cb"}, {&idle, "ci"}}); err != nil {
		t.Fatal(err)
	}
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	if err := connect(ctx, []link{
		{linkEnd{a, "eth0", []netip.Addr{addr("2001:db8:c0::10")}}, linkEnd{r, "eth-a", []netip.Addr{addr("2001:db8:c0::1")}}},
		{linkEnd{b, "eth0", []netip.Addr{addr("2001:db8:c1::10")}}, linkEnd{r, "eth-b", []netip.Addr{addr("2001:db8:c1::1")}}},
	}, ispLinkBits); err != nil {
		t.Fatal(err)
	}
	if err := addRoutes(ctx, []staticRoute{
		{a, "default", addr("2001:db8:c0::1"), "eth0"}, {b, "default", addr("2001:db8:c1::1"), "eth0"},
	}); err != nil {
		t.Fatal(err)
	}
	flow, err := StartFlow(a, "a", addr("2001:db8:c0::10"), b, "b", addr("2001:db8:c1::10"), 2*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(flow.Stop)
	for _, ns := range []*netns.NS{r, idle} {
		if err := countFlow(ctx, ns, flow); err != nil {
			t.Fatal(err)
		}
	}
	// Bounded wait for packets to be counted each way on r.
	var got [2]uint64
	for deadline := time.Now().Add(20 * time.Second); got[0] == 0 || got[1] == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("router r forwards the flow but its counters stayed at %v", got)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if got, err = flowCounts(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := flowCounts(ctx, idle); err != nil || n != [2]uint64{} {
		t.Errorf("the idle router counted %v (err %v), want nothing", n, err)
	}
}

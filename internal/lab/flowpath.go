package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// flowPathTable is the nft table, on ISP-A and ISP-B, whose counters see
// which ISP forwards a flow (countFlow). It is apart from the fault table
// (mhfault), so faults and their repair leave it alone.
const flowPathTable = "mhpath"

// flowCounterNames name the counters of a flow's two directions, in Flow's
// order (StartFlow's a to b, then back; "fwd" would be an nft keyword).
var flowCounterNames = [2]string{"a_to_b", "b_to_a"}

// countFlow (re)creates flowPathTable in ns: one counter per direction of
// flow, counting the packets ns forwards. Its chain runs before the fault
// table's (priority -10 against 0), so it counts what arrives even while a
// fault drops it.
func countFlow(ctx context.Context, ns *netns.NS, flow *Flow) error {
	_, _ = ns.Run(ctx, "nft", "delete", "table", "inet", flowPathTable) // absent the first time
	cmds := [][]string{
		{"nft", "add", "table", "inet", flowPathTable},
		{"nft", "add", "chain", "inet", flowPathTable, "count", "{ type filter hook forward priority -10; policy accept; }"},
	}
	fam := "ip6"
	if flow.addrs[0].Is4() {
		fam = "ip"
	}
	for i, name := range flowCounterNames {
		src, dst := flow.addrs[i], flow.addrs[1-i]
		cmds = append(cmds,
			[]string{"nft", "add", "counter", "inet", flowPathTable, name},
			[]string{"nft", "add", "rule", "inet", flowPathTable, "count", fam, "saddr", src.String(), fam, "daddr", dst.String(),
				"udp", "dport", fmt.Sprint(FlowPort), "counter", "name", name})
	}
	for _, args := range cmds {
		if _, err := ns.Run(ctx, args...); err != nil {
			return fmt.Errorf("lab: counting the flow on %s: %w", ns.Name, err)
		}
	}
	return nil
}

// flowCounts reads the counters countFlow made in ns.
func flowCounts(ctx context.Context, ns *netns.NS) ([2]uint64, error) {
	var out [2]uint64
	b, err := ns.Run(ctx, "nft", "-j", "list", "table", "inet", flowPathTable)
	if err != nil {
		return out, fmt.Errorf("lab: reading the flow's counters on %s: %w", ns.Name, err)
	}
	return parseFlowCounts(b)
}

// parseFlowCounts takes the packet counts of flowCounterNames from `nft -j
// list table` output; a counter missing from it is an error, not a 0.
func parseFlowCounts(b []byte) ([2]uint64, error) {
	var out [2]uint64
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return out, fmt.Errorf("lab: nft -j list table inet %s: %w", flowPathTable, err)
	}
	var seen [2]bool
	for _, o := range doc.Nftables {
		if o.Counter == nil {
			continue
		}
		for i, name := range flowCounterNames {
			if o.Counter.Name == name {
				out[i], seen[i] = o.Counter.Packets, true
			}
		}
	}
	for i, ok := range seen {
		if !ok {
			return out, fmt.Errorf("lab: nft table inet %s has no counter %q", flowPathTable, flowCounterNames[i])
		}
	}
	return out, nil
}

// FlowPath is what ISP-A and ISP-B forwarded of a flow over one window,
// per direction in Flow's order.
type FlowPath struct {
	ISPA, ISPB [2]uint64
}

// ViaISPA reports whether both directions went through ISP-A only: ISP-A
// forwarded some of each, ISP-B none.
func (p FlowPath) ViaISPA() bool {
	return p.ISPA[0] > 0 && p.ISPA[1] > 0 && p.ISPB == [2]uint64{}
}

// String says how many flow packets each ISP forwarded, each way.
func (p FlowPath) String() string {
	return fmt.Sprintf("ISP-A forwarded %d inbound / %d outbound, ISP-B %d / %d", p.ISPA[0], p.ISPA[1], p.ISPB[0], p.ISPB[1])
}

// flowPathOver counts what ISP-A and ISP-B forward of flow over window,
// after countFlow.
func (l *Lab) flowPathOver(ctx context.Context, window time.Duration) (FlowPath, error) {
	var before, after [2][2]uint64
	read := func(into *[2][2]uint64) error {
		for i, ns := range []*netns.NS{l.ISPA, l.ISPB} {
			c, err := flowCounts(ctx, ns)
			if err != nil {
				return err
			}
			into[i] = c
		}
		return nil
	}
	if err := read(&before); err != nil {
		return FlowPath{}, err
	}
	if err := sleepCtx(ctx, window); err != nil {
		return FlowPath{}, err
	}
	if err := read(&after); err != nil {
		return FlowPath{}, err
	}
	var p FlowPath
	for d := range 2 {
		p.ISPA[d] = after[0][d] - before[0][d]
		p.ISPB[d] = after[1][d] - before[1][d]
	}
	return p, nil
}

// FlowPathWindow is how long AwaitFlowViaISPA watches the ISPs' counters
// per check: a few hundred packets of a 1-2 ms flow, so a single stray packet
// via ISP-B shows.
const FlowPathWindow = 300 * time.Millisecond

// PathWait is how a run waited for the flow to take ISP-A
// (AwaitFlowViaISPA).
type PathWait struct {
	// Took is the whole wait: about FlowPathWindow when the flow already
	// went through ISP-A alone.
	Took time.Duration
	// First is what the ISPs forwarded in the first window.
	First FlowPath
	// FirstState is PathState at the end of the first window when that
	// window did not find the flow via ISP-A alone, "" otherwise: where
	// the lab routed the flow instead.
	FirstState string
}

// AwaitFlowViaISPA waits until both directions of flow (the internet host
// first, as in CompareRun) go through ISP-A and none through ISP-B, as the
// ISP routers' own packet counters see it, over one FlowPathWindow. The
// routing checks (AwaitRouting) only read the transit's table and the
// edge's route: a fault applied while the flow takes ISP-B misses it and
// looks like a perfect failover.
func (l *Lab) AwaitFlowViaISPA(ctx context.Context, flow *Flow, timeout time.Duration) (PathWait, error) {
	t0 := time.Now()
	var w PathWait
	for _, ns := range []*netns.NS{l.ISPA, l.ISPB} {
		if err := countFlow(ctx, ns, flow); err != nil {
			return w, err
		}
	}
	for n := 0; ; n++ {
		p, err := l.flowPathOver(ctx, FlowPathWindow)
		w.Took = time.Since(t0)
		if err != nil {
			return w, err
		}
		if n == 0 {
			w.First = p
			if !p.ViaISPA() {
				w.FirstState = l.PathState(ctx)
			}
		}
		if p.ViaISPA() {
			return w, nil
		}
		if w.Took >= timeout {
			return w, fmt.Errorf("lab: the flow did not go through ISP-A alone within %s (%s); %s", timeout, p, l.PathState(ctx))
		}
	}
}

// PathState describes where the lab routes the flow's two ends, for error
// messages: the edge's IPv6 route toward the internet host and its default
// routes, the transit's BGP paths for the site /48 (best marked) and its
// route toward the LAN host, and ISP-A's fault table.
func (l *Lab) PathState(ctx context.Context) string {
	show := func(ns *netns.NS, args ...string) string {
		out, err := ns.Run(ctx, args...)
		if err != nil {
			return err.Error()
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	var bgp []string
	paths, err := l.TransitRouter.Paths(ctx, SitePrefix6)
	if err != nil {
		bgp = append(bgp, err.Error())
	}
	for _, p := range paths {
		best := ""
		if p.Best {
			best = " best"
		}
		bgp = append(bgp, fmt.Sprintf("%v%s", p.ASPath, best))
	}
	return fmt.Sprintf("edge: %s; edge defaults: %s; transit paths for %s: %s; transit: %s; ISP-A fault table: %s",
		show(l.Edge, "ip", "-6", "route", "get", InetAddr6.String()),
		show(l.Edge, "ip", "-6", "route", "show", "default"),
		SitePrefix6, strings.Join(bgp, ", "),
		show(l.Transit, "ip", "-6", "route", "get", LANAddr6.String()),
		show(l.ISPA, "nft", "list", "table", "inet", "mhfault"))
}

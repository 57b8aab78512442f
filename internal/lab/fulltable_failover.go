package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// The kernel-install failover run of the full-table bench adds ISP-B: a
// third namespace on the receiver's eth1, whose BIRD sends only default
// routes. Each router answers the probes of its uplink on an address of
// its loopback; ISP-A's failure drops those probes at the feeder (its BGP
// session stays up, as in a gray failure: only probes can see it).
const (
	// FullTableBackupASN is ISP-B's AS.
	FullTableBackupASN = 64511
	// FullTableInstallTable is the kernel table of the run's bgp.install.
	FullTableInstallTable = 300
	// ftBackupDev is the receiver's device toward ISP-B.
	ftBackupDev = "eth1"
	// ftFeedDev is the receiver's device toward the feeder (ISP-A).
	ftFeedDev = "eth0"
)

var (
	ftBackup6       = netip.MustParseAddr("2001:db8:ffff:2::1")
	ftReceiverB6    = netip.MustParseAddr("2001:db8:ffff:2::2")
	ftBackup4       = netip.MustParseAddr("198.51.100.5")
	ftReceiverB4    = netip.MustParseAddr("198.51.100.6")
	ftTarget6       = netip.MustParseAddr("2001:db8:ffff:a::1")
	ftTarget4       = netip.MustParseAddr("198.51.100.9")
	ftBackupTarget6 = netip.MustParseAddr("2001:db8:ffff:b::1")
	ftBackupTarget4 = netip.MustParseAddr("198.51.100.13")
)

// AddBackup builds ISP-B (namespace, link to the receiver's eth1, BIRD
// sending ::/0 and 0.0.0.0/0 as AS FullTableBackupASN) and puts the probe
// targets on both routers' loopbacks. Close removes it with the rest.
func (f *FullTable) AddBackup(ctx context.Context) error {
	if f.backup != nil {
		return nil
	}
	b, err := netns.New(ctx, "mh"+f.id+"ftb")
	if err != nil {
		return err
	}
	f.backup = b
	if err := netns.Veth(ctx, b, "eth0", f.Receiver, ftBackupDev); err != nil {
		return err
	}
	for _, a := range []struct {
		ns  *netns.NS
		dev string
		p   netip.Prefix
	}{
		{b, "eth0", netip.PrefixFrom(ftBackup6, 64)}, {b, "eth0", netip.PrefixFrom(ftBackup4, 30)},
		{f.Receiver, ftBackupDev, netip.PrefixFrom(ftReceiverB6, 64)}, {f.Receiver, ftBackupDev, netip.PrefixFrom(ftReceiverB4, 30)},
		{b, "lo", netip.PrefixFrom(ftBackupTarget6, 128)}, {b, "lo", netip.PrefixFrom(ftBackupTarget4, 32)},
		{f.Feeder, "lo", netip.PrefixFrom(ftTarget6, 128)}, {f.Feeder, "lo", netip.PrefixFrom(ftTarget4, 32)},
	} {
		if err := a.ns.AddAddr(ctx, a.dev, a.p); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf("router id %s;\ntimeformat protocol iso long;\nprotocol device { }\n", ftBackup4) +
		"protocol static defaults6 { ipv6; route ::/0 blackhole; }\nprotocol static defaults4 { ipv4; route 0.0.0.0/0 blackhole; }\n"
	for _, s := range []struct {
		name, fam       string
		local, neighbor netip.Addr
	}{{"to_r6", "ipv6", ftBackup6, ftReceiverB6}, {"to_r4", "ipv4", ftBackup4, ftReceiverB4}} {
		conf += fmt.Sprintf("protocol bgp %s {\n  local %s as %d;\n  neighbor %s as %d;\n  connect retry time 1;\n  error wait time 1, 5;\n  %s { import none; export where source = RTS_STATIC; };\n}\n",
			s.name, s.local, FullTableBackupASN, s.neighbor, FullTableReceiverASN, s.fam)
	}
	f.backupBIRD, err = startBIRD(ctx, b, conf, map[netip.Addr]string{ftReceiverB6: "to_r6", ftReceiverB4: "to_r4"})
	return err
}

// failISPA makes the feeder drop the probes to its target (ISP-A's
// failure as the edge sees it; the BGP sessions stay up); healISPA
// undoes it.
func (f *FullTable) failISPA(ctx context.Context) error {
	_, _ = f.Feeder.Run(ctx, "nft", "delete", "table", "inet", "mhfault")
	rules := fmt.Sprintf("add table inet mhfault\nadd chain inet mhfault in { type filter hook input priority 0; policy accept; }\n"+
		"add rule inet mhfault in ip6 daddr %s drop\nadd rule inet mhfault in ip daddr %s drop\n", ftTarget6, ftTarget4)
	cmd := f.Feeder.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab: nft in %s: %v: %s", f.Feeder.Name, err, out)
	}
	return nil
}

func (f *FullTable) healISPA(ctx context.Context) error {
	_, err := f.Feeder.Run(ctx, "nft", "delete", "table", "inet", "mhfault")
	return err
}

// InstallFailover is what MeasureInstallFailover measured.
type InstallFailover struct {
	// CompatMode is the receiver's net.ipv4.nexthop_compat_mode.
	CompatMode int
	// Failed is when ISP-A's failure began (the nft rule was being set);
	// Egress and Moved count from it.
	Failed time.Time
	// Routes is the number of routes in the install table, all through
	// ISP-A before the failure; Groups the nexthop groups they use.
	Routes int
	Groups []int
	// Egress is the time from ISP-A's failure until no egress default
	// route (main table, IPv6 and IPv4) leaves through ISP-A: the
	// controller's decision as the kernel shows it, the baseline.
	Egress time.Duration
	// Moved is the time from ISP-A's failure until no group of the
	// install table's routes has a leg through ISP-A.
	Moved time.Duration
	// ViaISPA counts the install table's routes that still left through
	// ISP-A in a full dump after the move (0 when the move is complete).
	ViaISPA int
	// Restored is the time from ISP-A's recovery until the groups lead
	// through it again.
	Restored time.Duration
}

// WaitInstalled waits until the install table holds the whole feed (a
// full dump every second) and returns how long it waited, or an error
// after timeout.
func (f *FullTable) WaitInstalled(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	want := f.IPv6 + f.IPv4
	var last installTable
	took, err := pollUntil(ctx, time.Now(), time.Second, timeout, func(ctx context.Context) (bool, error) {
		t, err := f.installDump(ctx)
		last = t
		return err == nil && t.routes == want, err
	})
	if err != nil {
		return took, fmt.Errorf("lab: the install table holds %d of %d routes: %w", last.routes, want, err)
	}
	return took, nil
}

// MeasureInstallFailover runs against a daemon started with
// StartFullTableInstallDaemon that holds the whole feed in its install
// table: it sets nexthop_compat_mode to compat in the receiver namespace,
// waits until both uplinks are up, refuses to measure when the main table
// holds more than links and defaults, checks that every route of the table
// leaves through ISP-A (a full dump), fails ISP-A and polls the kernel
// (`ip nexthop` and the default routes, each as fast as `ip` runs) until
// nothing leads through ISP-A any more, checks that with a second full
// dump, then heals ISP-A and waits until the groups lead through it
// again. Each wait gives up after timeout.
func (f *FullTable) MeasureInstallFailover(ctx context.Context, compat int, timeout time.Duration) (InstallFailover, error) {
	res := InstallFailover{CompatMode: compat}
	if _, err := f.Receiver.Run(ctx, "sysctl", "-qw", fmt.Sprintf("net.ipv4.nexthop_compat_mode=%d", compat)); err != nil {
		return res, err
	}
	if err := f.waitUplinksUp(ctx, timeout); err != nil {
		return res, err
	}
	// Another program's full table in main (a killed zebra's, say) would
	// be walked by every egress read-back and measured with the failover.
	main := 0
	for _, fam := range []string{"-6", "-4"} {
		out, err := f.Receiver.Run(ctx, "ip", "-o", fam, "route", "show", "table", "main")
		if err != nil {
			return res, err
		}
		main += strings.Count(string(out), "\n")
	}
	if main > ftMainMax {
		return res, fmt.Errorf("lab: the receiver's main table holds %d routes (at most %d expected: links and defaults); another program's table there would be measured with the failover", main, ftMainMax)
	}
	before, err := f.installDump(ctx)
	if err != nil {
		return res, err
	}
	res.Routes, res.Groups = before.routes, before.groups
	if before.viaDev[ftFeedDev] != before.routes || before.routes == 0 {
		return res, fmt.Errorf("lab: before the failure %d of the install table's %d routes lead through ISP-A (%s); want all (by device: %v)",
			before.viaDev[ftFeedDev], before.routes, ftFeedDev, before.viaDev)
	}
	start := time.Now()
	res.Failed = start
	if err := f.failISPA(ctx); err != nil {
		return res, err
	}
	egress := make(chan error, 1)
	go func() {
		d, err := pollUntil(ctx, start, ftPoll, timeout, f.egressOffISPA)
		res.Egress = d
		egress <- err
	}()
	moved, err := pollUntil(ctx, start, ftPoll, timeout, func(ctx context.Context) (bool, error) {
		via, err := f.groupsVia(ctx, res.Groups)
		return err == nil && !via[ftFeedDev], err
	})
	res.Moved = moved
	if eerr := <-egress; err == nil {
		err = eerr
	}
	if err != nil {
		_ = f.healISPA(ctx)
		return res, err
	}
	after, err := f.installDump(ctx)
	if err != nil {
		_ = f.healISPA(ctx)
		return res, err
	}
	res.ViaISPA = after.viaDev[ftFeedDev]
	if after.routes != res.Routes {
		_ = f.healISPA(ctx)
		return res, fmt.Errorf("lab: the install table held %d routes before ISP-A failed and %d after the move; the move must not touch routes", res.Routes, after.routes)
	}
	heal := time.Now()
	if err := f.healISPA(ctx); err != nil {
		return res, err
	}
	res.Restored, err = pollUntil(ctx, heal, ftPoll, timeout, func(ctx context.Context) (bool, error) {
		via, err := f.groupsVia(ctx, res.Groups)
		return err == nil && via[ftFeedDev] && !via[ftBackupDev], err
	})
	return res, err
}

// pollUntil calls done every interval until it reports true and returns
// the time from start to the end of that call (when the state was seen),
// or an error once timeout has passed since start.
func pollUntil(ctx context.Context, start time.Time, interval, timeout time.Duration, done func(context.Context) (bool, error)) (time.Duration, error) {
	for {
		ok, err := done(ctx)
		if ok {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("lab: not within %s (last error: %v)", timeout, err)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(interval):
		}
	}
}

// ftMainMax is the most routes the receiver's main table may hold during
// the failover: connected and link-local routes and the egress defaults.
const ftMainMax = 32

// ftPoll is the pause between two polls of the kernel during a failover:
// with the few milliseconds `ip` takes, a state is seen within about 8 ms
// of its change, and the polls leave the daemon most of the CPU.
const ftPoll = 5 * time.Millisecond

// waitUplinksUp waits until the daemon's decision has both uplinks up in
// two scrapes half a second apart.
func (f *FullTable) waitUplinksUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	streak := 0
	last := ""
	for streak < 2 {
		m, err := ScrapeMetrics(f.Receiver, MetricsAddr)
		switch {
		case err != nil:
			streak, last = 0, err.Error()
		case m["multihomed_uplink_state{state=up,uplink=feed}"] != 1 || m["multihomed_uplink_state{state=up,uplink=backup}"] != 1:
			streak, last = 0, "an uplink is not up in the daemon's decision"
		default:
			streak++
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: uplinks not up within %s: %s", timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// egressOffISPA reports whether no default route of the main table, IPv6
// or IPv4, leaves through ISP-A's device.
func (f *FullTable) egressOffISPA(ctx context.Context) (bool, error) {
	for _, fam := range []string{"-6", "-4"} {
		out, err := f.Receiver.Run(ctx, "ip", "-o", fam, "route", "show", "default")
		if err != nil {
			return false, err
		}
		if strings.Contains(string(out), " dev "+ftFeedDev+" ") {
			return false, nil
		}
	}
	return true, nil
}

// groupsVia returns the devices the nexthops ids lead through, their
// groups' legs resolved.
func (f *FullTable) groupsVia(ctx context.Context, ids []int) (map[string]bool, error) {
	out, err := f.Receiver.Run(ctx, "ip", "-j", "nexthop", "show")
	if err != nil {
		return nil, err
	}
	nhs, err := parseNexthops(out)
	if err != nil {
		return nil, err
	}
	via := map[string]bool{}
	for _, id := range ids {
		for _, d := range nhs.devices(id) {
			via[d] = true
		}
	}
	return via, nil
}

// installTable is a full dump of the install table but its default
// routes (ISP-B's, installed as well): the feed's routes, the
// nexthops they use and how many leave through each device.
type installTable struct {
	routes int
	groups []int
	viaDev map[string]int
}

// installDump reads every route of the install table (`ip -o route show
// table`, both families) and the nexthops, and counts the routes by the
// device they leave through: a route with a nexthop id leaves through its
// legs' devices (with nexthop_compat_mode 1 the kernel also prints them
// on the route; the nexthop table is what forwarding uses), one without
// through the device printed on it.
func (f *FullTable) installDump(ctx context.Context) (installTable, error) {
	t := installTable{viaDev: map[string]int{}}
	out, err := f.Receiver.Run(ctx, "ip", "-j", "nexthop", "show")
	if err != nil {
		return t, err
	}
	nhs, err := parseNexthops(out)
	if err != nil {
		return t, err
	}
	byID := map[int]int{}
	for _, fam := range []string{"-6", "-4"} {
		cmd := f.Receiver.Command(ctx, "ip", "-o", fam, "route", "show", "table", strconv.Itoa(FullTableInstallTable))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return t, err
		}
		if err := cmd.Start(); err != nil {
			return t, err
		}
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "default ") {
				continue // ISP-B's defaults: not the feed's
			}
			id, dev := routeVia(line)
			t.routes++
			if id != 0 {
				byID[id]++
			} else if dev != "" {
				t.viaDev[dev]++
			}
		}
		if err := cmd.Wait(); err != nil {
			return t, fmt.Errorf("lab: ip route show table %d: %v: %s", FullTableInstallTable, err, stderr.String())
		}
	}
	for id, n := range byID {
		t.groups = append(t.groups, id)
		for _, d := range nhs.devices(id) {
			t.viaDev[d] += n
		}
	}
	return t, nil
}

// routeVia returns the nexthop id and the device of one line of `ip -o
// route show` (0 and "" where the line has none).
func routeVia(line string) (id int, dev string) {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "nhid":
			id, _ = strconv.Atoi(f[i+1])
		case "dev":
			if dev == "" {
				dev = f[i+1]
			}
		}
	}
	return id, dev
}

// nexthops is `ip -j nexthop show`, by id.
type nexthops map[int]nexthopJSON

type nexthopJSON struct {
	ID  int    `json:"id"`
	Dev string `json:"dev"`
	// Blackhole is present (as null) on a blackhole nexthop.
	Blackhole json.RawMessage `json:"blackhole"`
	Group     []struct {
		ID int `json:"id"`
	} `json:"group"`
}

func parseNexthops(out []byte) (nexthops, error) {
	var list []nexthopJSON
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("lab: ip -j nexthop show: %w", err)
	}
	m := nexthops{}
	for _, n := range list {
		m[n.ID] = n
	}
	return m, nil
}

// devices returns the devices nexthop id leads through: its own, or its
// group's legs'; "blackhole" for a blackhole, "missing" for an id the
// table does not have.
func (m nexthops) devices(id int) []string {
	n, ok := m[id]
	switch {
	case !ok:
		return []string{"missing"}
	case len(n.Blackhole) > 0:
		return []string{"blackhole"}
	case len(n.Group) == 0:
		return []string{n.Dev}
	}
	var out []string
	for _, g := range n.Group {
		if l, ok := m[g.ID]; ok && len(l.Group) == 0 {
			out = append(out, m.devices(g.ID)...)
		} else {
			out = append(out, "missing")
		}
	}
	return out
}

// DaemonGoroutines returns the stacks of every goroutine of the daemon in
// the receiver namespace (pprof on FullTablePprofAddr), for a failure
// report: where a failover that did not happen is stuck.
func (f *FullTable) DaemonGoroutines() (string, error) {
	resp, err := getInNS(f.Receiver, FullTablePprofAddr, "/debug/pprof/goroutine?debug=2")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, err = io.Copy(&b, resp.Body)
	return b.String(), err
}

// GroupLoss is what MeasureGroupLoss measured.
type GroupLoss struct {
	// Routes is how many routes the install table held before.
	Routes int
	// Deleted is when the groups were deleted.
	Deleted time.Time
	// Restored is the time from the groups' deletion until every route
	// was back through ISP-A (within the second of the table's dumps).
	Restored time.Duration
	// RSSBefore and RSSAfter are the daemon's peak RSS (VmHWM) before the
	// deletion and once the routes were back, in bytes.
	RSSBefore, RSSAfter int64
}

// MeasureGroupLoss deletes ISP-A's nexthop groups of the install table by
// hand, as the kernel does when the device of their last leg loses its
// carrier (the kernel then deletes every route using them; the BGP
// session stays up), and times until the daemon has every route back
// through ISP-A: its read-back at the next controller.resync finds the
// groups gone and replays the best paths. pid is the daemon's.
func (f *FullTable) MeasureGroupLoss(ctx context.Context, pid int, timeout time.Duration) (GroupLoss, error) {
	var res GroupLoss
	before, err := f.installDump(ctx)
	if err != nil {
		return res, err
	}
	res.Routes = before.routes
	if before.viaDev[ftFeedDev] != before.routes || before.routes == 0 {
		return res, fmt.Errorf("lab: before the groups' loss %d of %d routes lead through ISP-A; want all", before.viaDev[ftFeedDev], before.routes)
	}
	if res.RSSBefore, err = peakRSS(pid); err != nil {
		return res, err
	}
	start := time.Now()
	res.Deleted = start
	for _, id := range before.groups {
		if _, err := f.Receiver.Run(ctx, "ip", "nexthop", "del", "id", strconv.Itoa(id)); err != nil {
			return res, err
		}
	}
	var last installTable
	res.Restored, err = pollUntil(ctx, start, time.Second, timeout, func(ctx context.Context) (bool, error) {
		t, err := f.installDump(ctx)
		last = t
		return err == nil && t.routes == res.Routes && t.viaDev[ftFeedDev] == res.Routes, err
	})
	if err != nil {
		return res, fmt.Errorf("lab: %d of %d routes back through ISP-A after its groups went: %w", last.viaDev[ftFeedDev], res.Routes, err)
	}
	res.RSSAfter, err = peakRSS(pid)
	return res, err
}

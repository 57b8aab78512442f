package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/internal/netns"
)

// The full-table bench (mhlab bench fulltable): a feeder namespace running
// BIRD 2 that originates a generated table, joined by one veth to a
// receiver namespace where multihomed, BIRD 2 and FRR bgpd take it in
// turn. Nothing else is connected to either namespace, so the feed's
// non-documentation IPv4 space (see FullTablePrefix) never leaves them.
const (
	// FullTableFeederASN is the feeder's AS, the first AS of every path.
	FullTableFeederASN = 64510
	// FullTableReceiverASN is the receivers' AS.
	FullTableReceiverASN = 64500
)

var (
	ftFeeder6   = netip.MustParseAddr("2001:db8:ffff:1::1")
	ftReceiver6 = netip.MustParseAddr("2001:db8:ffff:1::2")
	ftFeeder4   = netip.MustParseAddr("198.51.100.1")
	ftReceiver4 = netip.MustParseAddr("198.51.100.2")
	// ftSite6 and ftSite4 are multihomed's site prefixes: outside the feed.
	ftSite6 = netip.MustParsePrefix("2001:db8:fffe::/48")
	ftSite4 = netip.MustParsePrefix("192.0.2.0/24")
)

// ftDocV6 counts the feed's /48s taken from 2001:db8::/32 (2001:db8:0:: to
// 2001:db8:fffd::, short of the site and link /48s).
const ftDocV6 = 0xfffe

// FullTablePrefix returns the i-th prefix of the feed's IPv6 (v6) or IPv4
// table. IPv6: /48s of 2001:db8::/32, then of 3fff::/20 (RFC 9637
// documentation space, which profile lab accepts). IPv4: /24s of
// 198.18.0.0/15 and 203.0.113.0/24, then of 10.0.0.0/8, then of
// 16.0.0.0/4: documentation and private space hold fewer than 70,000 /24s,
// a full table a million. The public-looking ones exist only inside the
// two closed namespaces.
func FullTablePrefix(v6 bool, i int) netip.Prefix {
	if v6 {
		if i < ftDocV6 {
			return netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", i))
		}
		j := i - ftDocV6
		return netip.MustParsePrefix(fmt.Sprintf("3fff:%x:%x::/48", j>>16&0xfff, j&0xffff))
	}
	var base uint32
	switch {
	case i < 512:
		base = 198<<24 | 18<<16
	case i == 512:
		return netip.MustParsePrefix("203.0.113.0/24")
	case i < 513+65536:
		base, i = 10<<24, i-513
	default:
		base, i = 16<<24, i-513-65536
	}
	a := base + uint32(i)<<8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), 0}), 24)
}

// FullTablePath returns the AS path the feeder puts on prefix k of the
// feed (IPv6 prefixes count from 0, IPv4 from 1<<24), before its own AS:
// 2 to 4 ASNs, the first a private 4-byte ASN unique to the prefix, so
// that no two prefixes share a path (as in the real table, where most
// UPDATEs carry one prefix), the others from ftPathASNs. With paths > 0
// the feed has only that many distinct paths: prefix k gets path k mod
// paths, and the feeder packs the prefixes of one path into few UPDATEs.
func FullTablePath(k, paths int) []uint32 {
	if paths > 0 {
		k %= paths
	}
	path := []uint32{4200000000 + uint32(k)}
	for n := 1; n < 2+k%3; n++ {
		path = append(path, ftPathASNs[(k>>(4*n))%len(ftPathASNs)])
	}
	return path
}

// ftPathASNs are 64496-64511 but the receivers' and the feeder's: a path
// holding the receiver's AS is dropped as a loop.
var ftPathASNs = []uint32{64496, 64497, 64498, 64499, 64501, 64502, 64503, 64504, 64505, 64506, 64507, 64508, 64509, 64511}

// fullTableFeederConf renders the feeder's BIRD configuration: one static
// protocol per family whose routes carry their bgp_path, exported to the
// receiver over one session per family.
func fullTableFeederConf(w *bufio.Writer, v6, v4, paths int) {
	fmt.Fprintf(w, "router id %s;\ntimeformat protocol iso long;\nprotocol device { }\n", ftFeeder4)
	for _, fam := range []struct {
		name   string
		n, off int
		is6    bool
	}{{"ipv6", v6, 0, true}, {"ipv4", v4, 1 << 24, false}} {
		fmt.Fprintf(w, "protocol static feed_%s {\n  %s;\n", fam.name, fam.name)
		for i := range fam.n {
			fmt.Fprintf(w, "  route %s blackhole { bgp_path.prepend(", FullTablePrefix(fam.is6, i))
			path := FullTablePath(fam.off+i, paths)
			// prepend puts each ASN in front: the last one first.
			for j := len(path) - 1; j >= 0; j-- {
				if j < len(path)-1 {
					w.WriteString("); bgp_path.prepend(")
				}
				w.WriteString(strconv.FormatUint(uint64(path[j]), 10))
			}
			w.WriteString("); };\n")
		}
		w.WriteString("}\n")
	}
	for _, s := range []struct {
		name, fam       string
		local, neighbor netip.Addr
	}{{"to_r6", "ipv6", ftFeeder6, ftReceiver6}, {"to_r4", "ipv4", ftFeeder4, ftReceiver4}} {
		fmt.Fprintf(w, `protocol bgp %s {
  local %s as %d;
  neighbor %s as %d;
  connect retry time 1;
  error wait time 1, 5;
  %s { import none; export where source = RTS_STATIC; };
}
`, s.name, s.local, FullTableFeederASN, s.neighbor, FullTableReceiverASN, s.fam)
	}
}

// FullTable is the bench's pair of namespaces with the feeder running.
type FullTable struct {
	// Feeder runs the feeding BIRD; Receiver is where receivers run, on
	// device "eth0" with ReceiverAddrs.
	Feeder, Receiver *netns.NS
	// IPv6 and IPv4 are the feed's sizes; Paths its number of distinct
	// AS paths (0: one per prefix).
	IPv6, IPv4, Paths int
	// FeederLoad is how long the feeder took to load its table.
	FeederLoad time.Duration
	feeder     *BIRD
	id         string
	// backup is ISP-B of the kernel-install failover run (AddBackup).
	backup     *netns.NS
	backupBIRD *BIRD
}

// UpFullTable builds the namespaces (names carry id) and starts the feeder
// with v6 IPv6 and v4 IPv4 prefixes and paths distinct AS paths (0: one
// per prefix; see FullTablePath), returning once it holds all of them.
// Close removes everything.
func UpFullTable(ctx context.Context, id string, v6, v4, paths int) (f *FullTable, err error) {
	f = &FullTable{IPv6: v6, IPv4: v4, Paths: paths, id: id}
	defer func() {
		if err != nil {
			f.Close()
			f = nil
		}
	}()
	if f.Feeder, err = netns.New(ctx, "mh"+id+"ftf"); err != nil {
		return f, err
	}
	if f.Receiver, err = netns.New(ctx, "mh"+id+"ftr"); err != nil {
		return f, err
	}
	if err = netns.Veth(ctx, f.Feeder, "eth0", f.Receiver, "eth0"); err != nil {
		return f, err
	}
	for _, a := range []struct {
		ns *netns.NS
		p  netip.Prefix
	}{
		{f.Feeder, netip.PrefixFrom(ftFeeder6, 64)}, {f.Feeder, netip.PrefixFrom(ftFeeder4, 30)},
		{f.Receiver, netip.PrefixFrom(ftReceiver6, 64)}, {f.Receiver, netip.PrefixFrom(ftReceiver4, 30)},
	} {
		if err = a.ns.AddAddr(ctx, "eth0", a.p); err != nil {
			return f, err
		}
	}
	var conf strings.Builder
	bw := bufio.NewWriter(&conf)
	fullTableFeederConf(bw, v6, v4, paths)
	if err = bw.Flush(); err != nil {
		return f, err
	}
	start := time.Now()
	if f.feeder, err = startBIRD(ctx, f.Feeder, conf.String(), map[netip.Addr]string{ftReceiver6: "to_r6", ftReceiver4: "to_r4"}); err != nil {
		return f, err
	}
	for {
		n, err := birdRouteCount(ctx, f.feeder)
		if err == nil && n == v6+v4 {
			f.FeederLoad = time.Since(start)
			return f, nil
		}
		select {
		case <-ctx.Done():
			return f, fmt.Errorf("lab: feeder loaded %d of %d routes: %w", n, v6+v4, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close stops the feeder and removes the namespaces. Safe to call twice.
func (f *FullTable) Close() {
	for _, b := range []*BIRD{f.feeder, f.backupBIRD} {
		if b != nil {
			b.Close()
		}
	}
	f.feeder, f.backupBIRD = nil, nil
	for _, n := range []*netns.NS{f.Receiver, f.Feeder, f.backup} {
		if n != nil {
			_ = n.Close()
		}
	}
	f.Receiver, f.Feeder, f.backup = nil, nil, nil
}

var birdCountRe = regexp.MustCompile(`(\d+) of \d+ routes for \d+ networks in table`)

// birdRouteCount sums `show route count` over BIRD's tables (not its
// Total line).
func birdRouteCount(ctx context.Context, b *BIRD) (int, error) {
	out, err := b.Cmd(ctx, "show", "route", "count")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range birdCountRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n, nil
}

// FullTableReceiver is one implementation taking the feed.
type FullTableReceiver struct {
	// Name is "multihomed", "gobgp" (bare, StartFullTableGoBGP), "bird" or
	// "frr".
	Name string
	// Pid is the receiving process (multihomed, bird, bgpd).
	Pid int
	// Established reports whether a session with the feeder is up.
	Established func(ctx context.Context) (bool, error)
	// Accepted counts the routes the receiver accepted from the feeder.
	Accepted func(ctx context.Context) (int, error)
	// InRIB, when set, reports whether every route the feeder sent is in
	// the receiver's RIB although Accepted may not say so yet (multihomed
	// counts accepted routes after its initial transfer). Nil: Accepted
	// says it.
	InRIB func(ctx context.Context) (bool, error)
	// Stop stops the receiver.
	Stop func()
	// Log returns its log, for errors.
	Log func() string
}

// StartFullTableBIRD starts a BIRD 2 receiver (import all, no kernel
// protocol) in f's receiver namespace.
func (f *FullTable) StartFullTableBIRD(ctx context.Context) (*FullTableReceiver, error) {
	var conf strings.Builder
	fmt.Fprintf(&conf, "router id %s;\ntimeformat protocol iso long;\nprotocol device { }\n", ftReceiver4)
	for _, s := range []struct {
		name, fam       string
		local, neighbor netip.Addr
	}{{"from_f6", "ipv6", ftReceiver6, ftFeeder6}, {"from_f4", "ipv4", ftReceiver4, ftFeeder4}} {
		fmt.Fprintf(&conf, "protocol bgp %s {\n  local %s as %d;\n  neighbor %s as %d;\n  %s { import all; export none; };\n}\n",
			s.name, s.local, FullTableReceiverASN, s.neighbor, FullTableFeederASN, s.fam)
	}
	b, err := startBIRD(ctx, f.Receiver, conf.String(), map[netip.Addr]string{ftFeeder6: "from_f6", ftFeeder4: "from_f4"})
	if err != nil {
		return nil, err
	}
	pid, err := pidFile(filepath.Join(b.dir, "bird.pid"))
	if err != nil {
		b.Close()
		return nil, err
	}
	return &FullTableReceiver{Name: "bird", Pid: pid, Stop: b.Close, Log: b.Log,
		Established: func(ctx context.Context) (bool, error) {
			s, err := b.Session(ctx, ftFeeder6)
			return s.Established, err
		},
		Accepted: func(ctx context.Context) (int, error) { return birdRouteCount(ctx, b) },
	}, nil
}

// StartFullTableFRR starts an FRR receiver (zebra and bgpd, no policy) in
// f's receiver namespace. zebra installs what bgpd selects into the
// namespace's kernel tables, as FRR does in production; Pid is bgpd's.
// Stop removes those routes.
func (f *FullTable) StartFullTableFRR(ctx context.Context) (*FullTableReceiver, error) {
	conf := frrBGPConf(FullTableReceiverASN, ftReceiver4,
		[]frrNeighbor{{addr: ftFeeder6, asn: FullTableFeederASN}, {addr: ftFeeder4, asn: FullTableFeederASN}}, nil, "")
	r, err := startFRR(ctx, f.Receiver, conf)
	if err != nil {
		return nil, err
	}
	pid, err := pidFile(filepath.Join(r.runDir, "bgpd.pid"))
	if err != nil {
		r.Close()
		return nil, err
	}
	type peer struct {
		State  string `json:"state"`
		PfxRcd int    `json:"pfxRcd"`
	}
	var summary struct {
		IPv4 struct {
			Peers map[string]peer `json:"peers"`
		} `json:"ipv4Unicast"`
		IPv6 struct {
			Peers map[string]peer `json:"peers"`
		} `json:"ipv6Unicast"`
	}
	read := func(ctx context.Context) error {
		summary.IPv4.Peers, summary.IPv6.Peers = nil, nil
		return r.JSON(ctx, "show bgp summary json", &summary)
	}
	// zebra, killed, leaves the routes it installed: remove them, so that
	// the next receiver (the kernel-install run) starts from a main table
	// without a full table in it.
	stop := func() {
		r.Close()
		f.flushZebra()
	}
	return &FullTableReceiver{Name: "frr", Pid: pid, Stop: stop, Log: r.Log,
		Established: func(ctx context.Context) (bool, error) {
			if err := read(ctx); err != nil {
				return false, err
			}
			return summary.IPv6.Peers[ftFeeder6.String()].State == "Established", nil
		},
		Accepted: func(ctx context.Context) (int, error) {
			if err := read(ctx); err != nil {
				return 0, err
			}
			return summary.IPv6.Peers[ftFeeder6.String()].PfxRcd + summary.IPv4.Peers[ftFeeder4.String()].PfxRcd, nil
		},
	}, nil
}

// flushZebra removes what a killed zebra left in the receiver namespace:
// its nexthop objects (protocol zebra), which takes the routes using them
// along, then any route of protocol bgp left in main, until none is left
// (zebra may still be dying) or 30 s have passed.
func (f *FullTable) flushZebra() {
	ctx := context.Background()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		// 11 is RTPROT_ZEBRA; ip(8) takes no name here. A route flush
		// cannot delete routes that use a nexthop object (EINVAL):
		// deleting the nexthop takes them along.
		_, _ = f.Receiver.Run(ctx, "ip", "nexthop", "flush", "protocol", "11")
		left := 0
		for _, fam := range []string{"-6", "-4"} {
			_, _ = f.Receiver.Run(ctx, "ip", fam, "route", "flush", "table", "main", "proto", "bgp")
			out, _ := f.Receiver.Run(ctx, "ip", fam, "route", "show", "table", "main", "proto", "bgp")
			left += strings.Count(string(out), "\n")
		}
		if left == 0 {
			return
		}
	}
}

// FullTableConfig renders multihomed's configuration for the receiver
// namespace: one uplink with import full, max_prefixes at its default
// for import full (config.DefaultMaxPrefixesFull) or above the feed if
// that is larger, profile lab and bogon lists that let the feed's private
// ASNs and prefixes through, the default controller resync (status and metrics
// show the speaker's counts as of the request) and pprof on
// FullTablePprofAddr. Its state and API socket go into dir.
func (f *FullTable) FullTableConfig(dir string) string { return f.fullTableConfig(dir, false) }

// FullTableInstallConfig is FullTableConfig for the kernel-install
// failover run (after AddBackup): the feeder's uplink ("feed") and
// ISP-B's ("backup", import default) both probed every 50 ms (timeout
// 200 ms, fall 3: docs/health.md's fast profile) at a target on their
// router, bgp.install into FullTableInstallTable, and a hold-down of 1 s
// so that ISP-A comes back soon after it heals.
func (f *FullTable) FullTableInstallConfig(dir string) string { return f.fullTableConfig(dir, true) }

func (f *FullTable) fullTableConfig(dir string, failover bool) string {
	var feedHealth, backup, install, hold string
	if failover {
		health := func(t6, t4 netip.Addr) string {
			return fmt.Sprintf("    health:\n      interval: 50ms\n      timeout: 200ms\n      fall: 3\n      min_up: 1\n      targets: [\"icmp://%s\", \"icmp://%s\"]\n", t6, t4)
		}
		feedHealth = health(ftTarget6, ftTarget4)
		backup = ftUplink("backup", ftBackupDev, FullTableBackupASN, ftBackup6, ftReceiverB6, ftBackup4, ftReceiverB4, "") +
			health(ftBackupTarget6, ftBackupTarget4)
		install = fmt.Sprintf("bgp:\n  install:\n    table: %d\n", FullTableInstallTable)
		hold = "  hold_down: 1s\n  hold_down_max: 1s\n"
	}
	return fmt.Sprintf(`profile: lab
node:
  router_id: %s
  asn: %d
site:
  prefixes: [%s, %s]
filters:
  # The feed's paths use private 4-byte ASNs and its IPv4 private space.
  bogon_prefixes: ["240.0.0.0/4"]
  bogon_asns: ["0"]
uplinks:
%s%s%s%scontroller:
  state_dir: %s
%sapi:
  socket: %s
debug:
  # For profiles of the import (docs/benchmarks.md, "Where the time goes").
  pprof_listen: %s
`, ftReceiver4, FullTableReceiverASN, ftSite6, ftSite4,
		ftUplink("feed", ftFeedDev, FullTableFeederASN, ftFeeder6, ftReceiver6, ftFeeder4, ftReceiver4,
			fmt.Sprintf("      import: full\n      max_prefixes: %d\n", max(config.DefaultMaxPrefixesFull, max(f.IPv6, f.IPv4)+1000))),
		feedHealth, backup, install,
		filepath.Join(dir, "state"), hold, filepath.Join(dir, "api.sock"), FullTablePprofAddr)
}

// ftUplink renders one uplink of the bench's configuration: dual-stack
// BGP with the neighbor's and our addresses per family, bgpExtra appended
// to its bgp block.
func ftUplink(name, dev string, asn int, nbr6, local6, nbr4, local4 netip.Addr, bgpExtra string) string {
	return fmt.Sprintf("  - name: %s\n    interface: %s\n    bgp:\n      peer_asn: %d\n      neighbor: \"%s\"\n      local_address: \"%s\"\n"+
		"      neighbor_ipv4: \"%s\"\n      local_address_ipv4: \"%s\"\n      connect_retry: 1s\n%s", name, dev, asn, nbr6, local6, nbr4, local4, bgpExtra)
}

// FullTablePprofAddr is where the bench's multihomed serves pprof, in the
// receiver namespace.
const FullTablePprofAddr = "127.0.0.1:6061"

// StartFullTableGoBGP starts `mhlab bare-gobgp` (mhlab is the path of
// mhlab's binary) in f's receiver namespace: GoBGP as multihomed embeds
// it, with nothing of multihomed's, as a baseline. Its progress file goes
// into dir. Accepted is the paths in its RIB once both End-of-RIBs came,
// 0 before.
func (f *FullTable) StartFullTableGoBGP(ctx context.Context, mhlab, dir string) (*FullTableReceiver, error) {
	status := filepath.Join(dir, "bare-gobgp.status")
	d, err := startProcess(ctx, f.Receiver, nil, nil, mhlab, "bare-gobgp",
		"--asn", strconv.Itoa(FullTableReceiverASN), "--router-id", ftReceiver4.String(),
		"--listen", ftReceiver6.String()+","+ftReceiver4.String(),
		"--neighbor", fmt.Sprintf("%d@%s", FullTableFeederASN, ftFeeder6),
		"--neighbor", fmt.Sprintf("%d@%s", FullTableFeederASN, ftFeeder4),
		"--status", status)
	if err != nil {
		return nil, err
	}
	read := func() (string, error) {
		select {
		case <-d.Done():
			return "", fmt.Errorf("lab: bare-gobgp exited: %w", errReceiverGone)
		default:
		}
		b, err := os.ReadFile(status)
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return strings.TrimSpace(string(b)), err
	}
	return &FullTableReceiver{Name: "gobgp", Pid: d.Pid(), Log: d.Log,
		Stop: func() { _ = d.Stop(10 * time.Second) },
		Established: func(context.Context) (bool, error) {
			s, err := read()
			return s == "up" || strings.HasPrefix(s, "routes "), err
		},
		Accepted: func(context.Context) (int, error) {
			s, err := read()
			if n, ok := strings.CutPrefix(s, "routes "); ok {
				return strconv.Atoi(n)
			}
			if strings.HasPrefix(s, "error ") {
				return 0, fmt.Errorf("lab: bare-gobgp: %s: %w", s, errReceiverGone)
			}
			return 0, err
		},
	}, nil
}

// StartFullTableDaemon starts multihomed (binary) with FullTableConfig in
// f's receiver namespace; its files go into dir. It reads the session and
// the accepted count from the daemon's metrics (the feeder's uplink only).
func (f *FullTable) StartFullTableDaemon(ctx context.Context, binary, dir string) (*FullTableReceiver, error) {
	return f.startDaemon(ctx, binary, dir, f.FullTableConfig(dir))
}

// StartFullTableInstallDaemon is StartFullTableDaemon with
// FullTableInstallConfig, for MeasureInstallFailover (after AddBackup).
func (f *FullTable) StartFullTableInstallDaemon(ctx context.Context, binary, dir string) (*FullTableReceiver, error) {
	if f.backup == nil {
		return nil, fmt.Errorf("lab: the install run needs ISP-B: call AddBackup first")
	}
	return f.startDaemon(ctx, binary, dir, f.FullTableInstallConfig(dir))
}

func (f *FullTable) startDaemon(ctx context.Context, binary, dir, conf string) (*FullTableReceiver, error) {
	cfg := filepath.Join(dir, "multihomed.yaml")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	d, err := StartDaemon(ctx, f.Receiver, binary, cfg, nil)
	if err != nil {
		return nil, err
	}
	scrape := func() (map[string]float64, error) {
		select {
		case <-d.Done():
			return nil, fmt.Errorf("lab: multihomed exited: %w", errReceiverGone)
		default:
		}
		return ScrapeMetrics(f.Receiver, MetricsAddr)
	}
	// total adds up the feeder uplink's series of name with every label
	// in labels ("phase=receiving").
	total := func(m map[string]float64, name string, labels ...string) float64 {
		var v float64
		for k, x := range m {
			if strings.HasPrefix(k, name+"{") && strings.Contains(k, "uplink=feed") &&
				!slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(k, l) }) {
				v += x
			}
		}
		return v
	}
	sum := func(name string) (float64, error) {
		m, err := scrape()
		if err != nil {
			return 0, err
		}
		return total(m, name), nil
	}
	return &FullTableReceiver{Name: "multihomed", Pid: d.Pid(), Log: d.Log,
		Stop: func() { _ = d.Stop(10 * time.Second) },
		Established: func(context.Context) (bool, error) {
			v, err := sum("multihomed_bgp_session_up")
			return v > 0, err
		},
		Accepted: func(context.Context) (int, error) {
			v, err := sum("multihomed_bgp_prefixes_accepted")
			return int(v), err
		},
		// Every route the feeder sent is in the RIB once both sessions
		// are up and past their initial transfer (its End-of-RIB handled);
		// that it was the whole feed, MeasureFullTable's accepted count
		// says later.
		InRIB: func(context.Context) (bool, error) {
			m, err := scrape()
			if err != nil {
				return false, err
			}
			return total(m, "multihomed_bgp_session_up") == 2 && total(m, "multihomed_bgp_import_phase", "phase=receiving") == 0, nil
		},
	}, nil
}

// errReceiverGone is wrapped by a receiver's Established or Accepted when
// it can no longer converge (its process exited, or it reported an error):
// MeasureFullTable returns at once instead of waiting for its timeout.
var errReceiverGone = errors.New("the receiver is gone")

// FullTableResult is one receiver's measurement.
type FullTableResult struct {
	Receiver string
	// Converge is the time from the first poll that saw a session
	// established to the first that saw every route accepted.
	Converge time.Duration
	// InRIB is the time from the same poll to the first that saw every
	// route in the RIB (FullTableReceiver.InRIB; 0 if it never said so);
	// Converge for a receiver without InRIB. Meaningful when Finished: what
	// was in the RIB then was the whole feed, all accepted.
	InRIB time.Duration
	// Finished is false when the receiver did not accept everything
	// within the timeout; Accepted is then what it had.
	Finished bool
	Accepted int
	// CPU is the receiving process's user and system time at the end;
	// MaxRSS its peak resident set (VmHWM), in bytes.
	CPU    time.Duration
	MaxRSS int64
}

// MeasureFullTable polls r every poll until it accepted the whole feed or
// timeout passed since its session came up (or since the call, while it
// has none), then reads its CPU time and peak RSS. It does not stop r. A
// receiver that exits or reports an error ends it at once, with an error.
func (f *FullTable) MeasureFullTable(ctx context.Context, r *FullTableReceiver, poll, timeout time.Duration) (FullTableResult, error) {
	res := FullTableResult{Receiver: r.Name}
	want := f.IPv6 + f.IPv4
	begin := time.Now()
	var up time.Time
	for {
		if up.IsZero() {
			ok, err := r.Established(ctx)
			if errors.Is(err, errReceiverGone) {
				return res, err
			}
			if err == nil && ok {
				up = time.Now()
			}
		}
		if !up.IsZero() && res.InRIB == 0 && r.InRIB != nil {
			in, err := r.InRIB(ctx)
			if errors.Is(err, errReceiverGone) {
				return res, err
			}
			if err == nil && in {
				res.InRIB = time.Since(up)
			}
		}
		if !up.IsZero() {
			n, err := r.Accepted(ctx)
			if errors.Is(err, errReceiverGone) {
				return res, err
			}
			if err == nil {
				res.Accepted = n
			}
			if n == want {
				res.Converge, res.Finished = time.Since(up), true
				if r.InRIB == nil {
					res.InRIB = res.Converge
				}
				break
			}
		}
		from := begin
		if !up.IsZero() {
			from = up
		}
		if time.Since(from) > timeout {
			res.Converge = time.Since(from)
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(poll):
		}
	}
	var err error
	if res.CPU, err = ProcessCPU(r.Pid); err != nil {
		return res, err
	}
	res.MaxRSS, err = peakRSS(r.Pid)
	return res, err
}

// peakRSS reads VmHWM from /proc/pid/status, in bytes.
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("lab: peak RSS of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fs := strings.Fields(v)
			if len(fs) > 0 {
				kb, err := strconv.ParseInt(fs[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("lab: /proc/%d/status has no VmHWM", pid)
}

func pidFile(path string) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("lab: no pid in %s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

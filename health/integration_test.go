package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/multihomed/multihomed/routing"

	"github.com/multihomed/multihomed/fib"
	"github.com/multihomed/multihomed/internal/delayline"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
)

// The integration tests build this lab of network namespaces (DESIGN.md
// section 6) and run the real Monitor inside "edge" by re-executing the test
// binary there; responders run the same way inside "inet".
//
//	[inet: 2001:db8:9000:1::10, 203.0.113.10]--[isp-a]--link A--+
//	                                         \--[isp-b]--link B--+--[edge]
//
// link A 2001:db8:1000:1::/64 + 198.18.1.0/24, link B 2001:db8:2000:1::/64 +
// 198.18.2.0/24. The edge's main table has its defaults via ISP-B.

const helperEnv = "MH_HEALTH_HELPER"

var (
	inetHost6 = netip.MustParseAddr("2001:db8:9000:1::10")
	inetHost4 = netip.MustParseAddr("203.0.113.10")
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "responder":
		runResponder()
		os.Exit(0)
	case "edge":
		if err := runEdge(); err != nil {
			fmt.Fprintln(os.Stderr, "edge helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runResponder serves HTTP on :80 (also the TCP target), HTTPS on :443 with
// a certificate written to $MH_CA_FILE, and DNS on :53, on both families,
// then prints "ready" and runs until stdin closes.
func runResponder() {
	fail := func(err error) { fmt.Fprintln(os.Stderr, "responder:", err); os.Exit(1) }
	cert, pemBytes, err := selfSigned(inetHost6, inetHost4)
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(os.Getenv("MH_CA_FILE"), pemBytes, 0o644); err != nil {
		fail(err)
	}
	ln, err := net.Listen("tcp", ":80")
	if err != nil {
		fail(err)
	}
	go func() { _ = (&http.Server{Handler: responderHTTP(), ErrorLog: quietLog}).Serve(ln) }()
	tln, err := tls.Listen("tcp", ":443", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		fail(err)
	}
	go func() { _ = (&http.Server{Handler: responderHTTP(), ErrorLog: quietLog}).Serve(tln) }()
	// One socket per address: a wildcard UDP socket would answer from
	// whatever source the route picks, and a client only accepts replies from
	// the address it queried.
	for _, a := range []netip.Addr{inetHost6, inetHost4} {
		pc, err := net.ListenPacket("udp", netip.AddrPortFrom(a, 53).String())
		if err != nil {
			fail(err)
		}
		go serveDNS(pc)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// edgeSpec is what the edge helper runs, passed as JSON in $MH_EDGE_SPEC.
type edgeSpec struct {
	Uplinks  []Uplink
	Gateways map[string][]netip.Addr
}

// edgeLine is one line the edge helper prints: the verdicts after a change,
// or the same verdicts with fresh counters once a second.
type edgeLine struct {
	Verdicts map[string]string
	Reasons  map[string]string
	Up       map[string]int
	Stats    map[string]edgeStats
	// At is when the test read the line (not sent by the helper).
	At time.Time `json:"-"`
}

// edgeStats are an uplink's probe counters (see UplinkStatus).
type edgeStats struct {
	Probes, Bursts, BurstProbes uint64
}

func runEdge() error {
	var spec edgeSpec
	if err := json.Unmarshal([]byte(os.Getenv("MH_EDGE_SPEC")), &spec); err != nil {
		return err
	}
	pt, err := fib.NewProbeTables("", 0)
	if err != nil {
		return err
	}
	var tables []routing.ProbeTable
	for _, u := range spec.Uplinks {
		tables = append(tables, routing.ProbeTable{Uplink: u.Name, Mark: u.Health.Mark, Table: u.Health.Table,
			Device: u.Device, Gateways: spec.Gateways[u.Name]})
	}
	if _, err := pt.Set(context.Background(), tables); err != nil {
		return err
	}
	m, err := NewMonitor(Options{
		Uplinks: spec.Uplinks,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { // the parent closes stdin to stop us
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		cancel()
	}()
	go func() {
		// Print on every verdict change (polled too, so that a merged
		// Changed signal cannot hide one), and once a second for the
		// counters.
		enc := json.NewEncoder(os.Stdout)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		var lastKey string
		var lastPrint time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.Changed():
			case <-tk.C:
			}
			s := m.Snapshot()
			l := edgeLine{Verdicts: map[string]string{}, Reasons: map[string]string{}, Up: map[string]int{}, Stats: map[string]edgeStats{}}
			for _, u := range s.Uplinks {
				l.Verdicts[u.Name], l.Reasons[u.Name], l.Up[u.Name] = u.Verdict.String(), u.Reason, u.TargetsUp
				st := edgeStats{Bursts: u.Bursts, BurstProbes: u.BurstProbes}
				for _, tg := range u.Targets {
					st.Probes += tg.Probes
				}
				l.Stats[u.Name] = st
			}
			if key := fmt.Sprint(l.Verdicts); key != lastKey || time.Since(lastPrint) >= time.Second {
				lastKey, lastPrint = key, time.Now()
				_ = enc.Encode(l)
			}
		}
	}()
	err = m.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// lab is the namespace topology of one test.
type lab struct {
	id                     string
	edge, ispa, ispb, inet *netns.NS
	devA, devB             string // edge's uplink devices
	farA                   string // ISP-A's device toward the internet
	caFile                 string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.Need(t, "ip", "tc", "nft", "ping")
	ctx := context.Background()
	l := &lab{id: netns.UniqueID()}
	mk := func(p string) *netns.NS {
		n, err := netns.New(ctx, p+l.id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	l.edge, l.ispa, l.ispb, l.inet = mk("he"), mk("ha"), mk("hb"), mk("hi")
	l.devA, l.devB, l.farA = "ea"+l.id, "eb"+l.id, "ai"+l.id
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netns.Veth(ctx, l.edge, l.devA, l.ispa, "ae"+l.id))
	must(netns.Veth(ctx, l.edge, l.devB, l.ispb, "be"+l.id))
	must(netns.Veth(ctx, l.ispa, l.farA, l.inet, "ia"+l.id))
	must(netns.Veth(ctx, l.ispb, "bi"+l.id, l.inet, "ib"+l.id))
	addrs := []struct {
		ns   *netns.NS
		dev  string
		pfxs []string
	}{
		{l.edge, l.devA, []string{"2001:db8:1000:1::2/64", "198.18.1.2/24"}},
		{l.ispa, "ae" + l.id, []string{"2001:db8:1000:1::1/64", "198.18.1.1/24"}},
		{l.edge, l.devB, []string{"2001:db8:2000:1::2/64", "198.18.2.2/24"}},
		{l.ispb, "be" + l.id, []string{"2001:db8:2000:1::1/64", "198.18.2.1/24"}},
		{l.ispa, l.farA, []string{"2001:db8:1000:ff::1/64", "198.18.11.1/24"}},
		{l.inet, "ia" + l.id, []string{"2001:db8:1000:ff::2/64", "198.18.11.2/24"}},
		{l.ispb, "bi" + l.id, []string{"2001:db8:2000:ff::1/64", "198.18.12.1/24"}},
		{l.inet, "ib" + l.id, []string{"2001:db8:2000:ff::2/64", "198.18.12.2/24"}},
		{l.inet, "lo", []string{inetHost6.String() + "/128", inetHost4.String() + "/32"}},
	}
	for _, a := range addrs {
		for _, p := range a.pfxs {
			must(a.ns.AddAddr(ctx, a.dev, netip.MustParsePrefix(p)))
		}
	}
	cmds := []struct {
		ns   *netns.NS
		args []string
	}{
		{l.ispa, []string{"ip", "-6", "route", "add", "default", "via", "2001:db8:1000:ff::2"}},
		{l.ispa, []string{"ip", "-4", "route", "add", "default", "via", "198.18.11.2"}},
		{l.ispb, []string{"ip", "-6", "route", "add", "default", "via", "2001:db8:2000:ff::2"}},
		{l.ispb, []string{"ip", "-4", "route", "add", "default", "via", "198.18.12.2"}},
		{l.inet, []string{"ip", "-6", "route", "add", "2001:db8:1000::/36", "via", "2001:db8:1000:ff::1"}},
		{l.inet, []string{"ip", "-4", "route", "add", "198.18.1.0/24", "via", "198.18.11.1"}},
		{l.inet, []string{"ip", "-6", "route", "add", "2001:db8:2000::/36", "via", "2001:db8:2000:ff::1"}},
		{l.inet, []string{"ip", "-4", "route", "add", "198.18.2.0/24", "via", "198.18.12.1"}},
		// The main table prefers ISP-B: probes for ISP-A must not follow it.
		{l.edge, []string{"ip", "-6", "route", "add", "default", "via", "2001:db8:2000:1::1", "dev", l.devB}},
		{l.edge, []string{"ip", "-4", "route", "add", "default", "via", "198.18.2.1", "dev", l.devB}},
		// Strict reverse-path filtering would drop IPv4 replies arriving on
		// the uplink the main table does not prefer (see docs/health.md).
		{l.edge, []string{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"}},
		{l.edge, []string{"sysctl", "-qw", "net.ipv4.conf." + l.devA + ".rp_filter=0"}},
		{l.edge, []string{"sysctl", "-qw", "net.ipv4.conf." + l.devB + ".rp_filter=0"}},
	}
	for _, c := range cmds {
		if _, err := c.ns.Run(ctx, c.args...); err != nil {
			t.Fatal(err)
		}
	}
	l.caFile = filepath.Join(t.TempDir(), "ca.pem")
	l.startResponder(t)
	return l
}

func (l *lab) startResponder(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := l.inet.Command(context.Background(), exe)
	cmd.Env = append(os.Environ(), helperEnv+"=responder", "MH_CA_FILE="+l.caFile)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("responder did not start: %q %v", line, err)
	}
}

// edge is the running edge helper.
type edge struct {
	t     *testing.T
	lines chan edgeLine
	last  edgeLine
}

// startEdge runs the Monitor in the edge namespace with the same targets on
// both uplinks.
func (l *lab) startEdge(t *testing.T, targets []string, mod func(*Config)) *edge {
	t.Helper()
	var tg []Target
	for _, s := range targets {
		x, err := ParseTarget(s)
		if err != nil {
			t.Fatal(err)
		}
		if x.Kind == KindHTTPS {
			x.CAFile = l.caFile
		}
		if x.Kind == KindDNS {
			x.ExpectAnswer = true
		}
		tg = append(tg, x)
	}
	spec := edgeSpec{Gateways: map[string][]netip.Addr{
		"isp-a": {netip.MustParseAddr("2001:db8:1000:1::1"), netip.MustParseAddr("198.18.1.1")},
		"isp-b": {netip.MustParseAddr("2001:db8:2000:1::1"), netip.MustParseAddr("198.18.2.1")},
	}}
	for i, u := range []struct{ name, dev string }{{"isp-a", l.devA}, {"isp-b", l.devB}} {
		c := Config{Targets: append([]Target(nil), tg...)}
		if mod != nil {
			mod(&c)
		}
		c.ApplyDefaults(i)
		spec.Uplinks = append(spec.Uplinks, Uplink{Name: u.name, Device: u.dev, Health: c})
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	cmd := l.edge.Command(context.Background(), exe)
	cmd.Env = append(os.Environ(), helperEnv+"=edge", "MH_EDGE_SPEC="+string(js))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &edge{t: t, lines: make(chan edgeLine, 1000)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ln edgeLine
			if json.Unmarshal(sc.Bytes(), &ln) == nil {
				ln.At = time.Now()
				e.lines <- ln
			}
		}
		close(e.lines)
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("edge helper log:\n%s", stderr.String())
		}
	})
	return e
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// await waits until the verdicts are want, failing if any uplink in hold
// leaves its verdict meanwhile. It returns how long it waited.
func (e *edge) await(want, hold map[string]string, timeout time.Duration) time.Duration {
	e.t.Helper()
	start := time.Now()
	deadline := time.After(timeout)
	matches := func() bool {
		for u, v := range want {
			if e.last.Verdicts[u] != v {
				return false
			}
		}
		return true
	}
	for !matches() {
		select {
		case ln, ok := <-e.lines:
			if !ok {
				e.t.Fatal("edge helper exited")
			}
			e.last = ln
			for u, v := range hold {
				if ln.Verdicts[u] != v {
					e.t.Fatalf("%s left %s while waiting: %s (%s)", u, v, ln.Verdicts[u], ln.Reasons[u])
				}
			}
		case <-deadline:
			e.t.Fatalf("after %v: verdicts %v (%v), want %v", timeout, e.last.Verdicts, e.last.Reasons, want)
		}
	}
	return time.Since(start)
}

// watch collects the lines the edge prints for d (at least the current
// state, as the first element).
func (e *edge) watch(d time.Duration) []edgeLine {
	e.t.Helper()
	out := []edgeLine{e.last}
	deadline := time.After(d)
	for {
		select {
		case ln, ok := <-e.lines:
			if !ok {
				e.t.Fatal("edge helper exited")
			}
			e.last = ln
			out = append(out, ln)
		case <-deadline:
			return out
		}
	}
}

// distance puts ISP-A's probe targets d further away: a delay line on the
// replies ISP-A forwards back to the edge. It returns the line, closed at
// cleanup; SetDelay on it varies the distance.
func (l *lab) distance(t *testing.T, d time.Duration) *delayline.Line {
	t.Helper()
	line, err := delayline.Start(context.Background(), l.ispa, l.farA, d,
		delayline.Options{Device: "dr" + l.id, Table: 4243, Priority: 1001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = line.Close() })
	return line
}

var allKinds = []string{
	"icmp://" + inetHost6.String(),
	"icmp://" + inetHost4.String(),
	"tcp://[" + inetHost6.String() + "]:80",
	"http://[" + inetHost6.String() + "]/health",
	"https://" + inetHost4.String() + "/health",
	"dns://[" + inetHost6.String() + "]:53/example.org/AAAA",
}

var counterRe = regexp.MustCompile(`counter packets (\d+)`)

// TestIntegrationPinning probes every kind through both uplinks while the
// main table prefers ISP-B, proves with packet counters that ISP-A's probes
// leave through ISP-A only, then stops ISP-A forwarding (gray failure: its
// link and routes stay up) and checks that ISP-A goes down while ISP-B and
// unpinned traffic are fine.
func TestIntegrationPinning(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	markA := fmt.Sprintf("%#x", MarkBase)
	// Count ISP-A's marked packets by the device they leave through.
	nftRules := fmt.Sprintf(`table inet mhcount {
  chain post { type filter hook postrouting priority 0; policy accept;
    meta mark %s oifname "%s" counter
    meta mark %s oifname != "%s" counter
  }
}`, markA, l.devA, markA, l.devA)
	cmd := l.edge.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(nftRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}

	e := l.startEdge(t, allKinds, func(c *Config) {
		c.MinUp = len(allKinds) // every kind must work for "up"
		c.Interval, c.Timeout, c.Rise, c.Fall = 100*time.Millisecond, 500*time.Millisecond, 2, 3
		// This test is about pinning, not latency: on a loaded CI machine
		// an HTTPS or DNS probe can take 100 ms and make an uplink
		// "degraded", which the assertions would misread.
		c.RTTEnter, c.RTTLeave = 400*time.Millisecond, 300*time.Millisecond
	})
	both := map[string]string{"isp-a": "up", "isp-b": "up"}
	d := e.await(both, nil, 20*time.Second)
	t.Logf("all %d probe kinds up through both uplinks after %v", len(allKinds), d.Round(time.Millisecond))

	out, err := l.edge.Run(ctx, "nft", "list", "table", "inet", "mhcount")
	if err != nil {
		t.Fatal(err)
	}
	c := counterRe.FindAllStringSubmatch(string(out), -1)
	if len(c) != 2 {
		t.Fatalf("nft counters: %s", out)
	}
	viaA, _ := strconv.Atoi(c[0][1])
	elsewhere, _ := strconv.Atoi(c[1][1])
	t.Logf("isp-a marked packets: %d via %s, %d via any other device", viaA, l.devA, elsewhere)
	if viaA < 2*len(allKinds) || elsewhere != 0 {
		t.Fatalf("pinning broken: %d isp-a packets via %s, %d elsewhere", viaA, l.devA, elsewhere)
	}

	// Gray failure: ISP-A keeps its link and routes but forwards nothing.
	gray := l.ispa.Command(ctx, "nft", "-f", "-")
	gray.Stdin = strings.NewReader("table inet gray {\n chain graydrop {\n  type filter hook forward priority 0; policy drop;\n }\n}\n")
	if out, err := gray.CombinedOutput(); err != nil {
		t.Fatalf("nft gray: %v: %s", err, out)
	}
	start := time.Now()
	e.await(map[string]string{"isp-a": "down"}, map[string]string{"isp-b": "up"}, 10*time.Second)
	t.Logf("gray failure on isp-a detected in %v: %s", time.Since(start).Round(time.Millisecond), e.last.Reasons["isp-a"])
	// The site itself still reaches the internet through ISP-B.
	if _, err := l.edge.Run(ctx, "ping", "-6", "-c1", "-W2", inetHost6.String()); err != nil {
		t.Fatalf("unpinned traffic via isp-b failed: %v", err)
	}
	if _, err := l.ispa.Run(ctx, "nft", "delete", "table", "inet", "gray"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	e.await(both, map[string]string{"isp-b": "up"}, 20*time.Second)
	t.Logf("isp-a recovered in %v", time.Since(start).Round(time.Millisecond))

	// Carrier loss: ISP-A's end of the link goes down. The Monitor has no
	// carrier input (the controller reacts to carrier at once); the probes
	// alone must find the cut, within fall probes and their timeout.
	if _, err := l.ispa.Run(ctx, "ip", "link", "set", "ae"+l.id, "down"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	e.await(map[string]string{"isp-a": "down"}, map[string]string{"isp-b": "up"}, 5*time.Second)
	t.Logf("link cut on isp-a: down by its probes after %v: %s", time.Since(start).Round(time.Millisecond), e.last.Reasons["isp-a"])
}

// TestIntegrationFaults impairs ISP-A's path toward the internet: 100% loss
// makes ISP-A down, 20% loss and +150ms make it degraded, ISP-B stays up
// throughout, and removing each fault brings ISP-A back up. Loss is made
// with nftables and delay with a delay line (internal/delayline), the same
// on every kernel (this one has no sch_netem).
func TestIntegrationFaults(t *testing.T) {
	l := newLab(t)
	targets := []string{
		"icmp://" + inetHost6.String(),
		"icmp://" + inetHost4.String(),
		"tcp://[" + inetHost6.String() + "]:80",
	}
	e := l.startEdge(t, targets, func(c *Config) {
		c.Interval, c.Timeout, c.Rise, c.Fall, c.Window = 100*time.Millisecond, 500*time.Millisecond, 3, 5, 30
		c.RTTEnter, c.RTTLeave = 100*time.Millisecond, 60*time.Millisecond
	})
	both := map[string]string{"isp-a": "up", "isp-b": "up"}
	bUp := map[string]string{"isp-b": "up"}
	e.await(both, nil, 20*time.Second)

	for _, f := range l.impairments(t) {
		f.apply()
		start := time.Now()
		e.await(map[string]string{"isp-a": f.want}, bUp, 30*time.Second)
		t.Logf("%s: %s after %v (%s)", f.name, f.want, time.Since(start).Round(time.Millisecond), e.last.Reasons["isp-a"])
		f.remove()
		start = time.Now()
		e.await(both, bUp, 30*time.Second)
		t.Logf("%s removed: up after %v", f.name, time.Since(start).Round(time.Millisecond))
	}
}

// impairments lists the faults of ISP-A's path toward the internet: 100%
// and 20% loss (nftables on ISP-A's forward path) and +150 ms one-way delay
// (a delay line on what ISP-A forwards from the edge, the stand-in for
// netem on ISP-A's far side).
func (l *lab) impairments(t *testing.T) []fault {
	ctx := context.Background()
	loss := func(percent int) func() { return func() { t.Helper(); l.impairLoss(t, percent) } }
	noLoss := func() {
		t.Helper()
		if _, err := l.ispa.Run(ctx, "nft", "delete", "table", "inet", "loss"); err != nil {
			t.Fatal(err)
		}
	}
	var line *delayline.Line // the one in place, if any
	t.Cleanup(func() {
		if line != nil {
			_ = line.Close()
		}
	})
	delay := func() {
		t.Helper()
		var err error
		if line, err = delayline.Start(ctx, l.ispa, "ae"+l.id, 150*time.Millisecond, delayline.Options{Device: "dl" + l.id}); err != nil {
			t.Fatal(err)
		}
	}
	noDelay := func() {
		t.Helper()
		err := line.Close()
		line = nil
		if err != nil {
			t.Fatal(err)
		}
	}
	return []fault{
		{"100% loss beyond ISP-A (nftables)", "down", loss(100), noLoss},
		{"20% loss beyond ISP-A (nftables numgen)", "degraded", loss(20), noLoss},
		{"+150 ms beyond ISP-A (delay line)", "degraded", delay, noDelay},
	}
}

// impairLoss drops percent % of what ISP-A forwards toward the internet
// (nftables numgen), until the table inet loss is deleted.
func (l *lab) impairLoss(t *testing.T, percent int) {
	t.Helper()
	rule := fmt.Sprintf("table inet loss {\n chain lossdrop {\n  type filter hook forward priority 0; policy accept;\n  oifname %q %s drop\n }\n}\n", l.farA, lossExpr(percent))
	cmd := l.ispa.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rule)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft loss: %v: %s", err, out)
	}
}

func lossExpr(percent int) string {
	if percent >= 100 {
		return ""
	}
	return fmt.Sprintf("numgen random mod 100 < %d", percent)
}

package delayline

import (
	"context"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/netns/netnstest"
	"github.com/multihomed/multihomed/internal/testenv"
)

// topo is a - r - b: r routes between two hosts and is where the Line runs,
// delaying what r forwards from a (arriving on raDev).
type topo struct {
	a, r, b *netns.NS
	raDev   string
}

var (
	a6, b6, r6 = "2001:db8:d1::2", "2001:db8:d2::2", "2001:db8:d1::1"
	a4, b4, r4 = "198.18.21.2", "198.18.22.2", "198.18.21.1"
)

func newTopo(t *testing.T) *topo {
	t.Helper()
	testenv.Need(t, "ip", "ping", "sysctl")
	ctx := context.Background()
	id := netns.UniqueID()
	mk := func(p string) *netns.NS { return netnstest.New(t, p+id) }
	tp := &topo{a: mk("dla"), r: mk("dlr"), b: mk("dlb"), raDev: "ra" + id}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(netns.Veth(ctx, tp.a, "ar"+id, tp.r, tp.raDev))
	must(netns.Veth(ctx, tp.b, "br"+id, tp.r, "rb"+id))
	for _, x := range []struct {
		ns  *netns.NS
		dev string
		p   string
	}{
		{tp.a, "ar" + id, a6 + "/64"}, {tp.a, "ar" + id, a4 + "/24"},
		{tp.r, tp.raDev, r6 + "/64"}, {tp.r, tp.raDev, r4 + "/24"},
		{tp.r, "rb" + id, "2001:db8:d2::1/64"}, {tp.r, "rb" + id, "198.18.22.1/24"},
		{tp.b, "br" + id, b6 + "/64"}, {tp.b, "br" + id, b4 + "/24"},
	} {
		must(x.ns.AddAddr(ctx, x.dev, netip.MustParsePrefix(x.p)))
	}
	for _, c := range []struct {
		ns   *netns.NS
		args []string
	}{
		{tp.a, []string{"ip", "-6", "route", "add", "default", "via", r6}},
		{tp.a, []string{"ip", "-4", "route", "add", "default", "via", r4}},
		{tp.b, []string{"ip", "-6", "route", "add", "default", "via", "2001:db8:d2::1"}},
		{tp.b, []string{"ip", "-4", "route", "add", "default", "via", "198.18.22.1"}},
	} {
		if _, err := c.ns.Run(ctx, c.args...); err != nil {
			t.Fatal(err)
		}
	}
	return tp
}

var (
	rttRe = regexp.MustCompile(`= ([0-9.]+)/([0-9.]+)/([0-9.]+)/`)
	ttlRe = regexp.MustCompile(`ttl=([0-9]+)`)
	rxRe  = regexp.MustCompile(`(\d+) received`)
)

// ping pings dst from ns count times and returns the minimum and maximum
// RTT, the TTL of the first reply and how many replies came back.
func ping(t *testing.T, ns *netns.NS, dst string, count int) (min, max time.Duration, ttl, rx int) {
	t.Helper()
	out, err := ns.Run(context.Background(), "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "3", dst)
	s := string(out)
	m := rttRe.FindStringSubmatch(s)
	if err != nil || m == nil {
		t.Fatalf("ping %s: %v\n%s", dst, err, s)
	}
	ms := func(v string) time.Duration {
		f, _ := strconv.ParseFloat(v, 64)
		return time.Duration(f * float64(time.Millisecond))
	}
	ttl, _ = strconv.Atoi(ttlRe.FindStringSubmatch(s)[1])
	rx, _ = strconv.Atoi(rxRe.FindStringSubmatch(s)[1])
	return ms(m[1]), ms(m[3]), ttl, rx
}

func TestLine(t *testing.T) {
	tp := newTopo(t)
	ctx := context.Background()
	const d = 100 * time.Millisecond
	for _, dst := range []string{b6, b4} {
		if _, max, _, _ := ping(t, tp.a, dst, 3); max >= d {
			t.Fatalf("without a line, RTT to %s is already %v", dst, max)
		}
	}
	rpFilter := func() string {
		t.Helper()
		out, err := tp.r.Run(ctx, "sysctl", "-n", "net.ipv4.conf.all.rp_filter")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	if _, err := tp.r.Run(ctx, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=2"); err != nil {
		t.Fatal(err)
	}
	l, err := Start(ctx, tp.r, tp.raDev, d, Options{Device: "dl" + tp.raDev[2:]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if v := rpFilter(); v != "0" {
		t.Errorf("rp_filter %s with the line running, want 0", v)
	}

	for _, dst := range []string{b6, b4} {
		// a -> b is delayed on the way out, b -> a not: one delay per RTT.
		min, max, ttl, rx := ping(t, tp.a, dst, 5)
		if rx != 5 || min < d || max >= 2*d {
			t.Errorf("a -> %s through the line: %d/5 replies, RTT %v..%v, want all within [%v, %v)", dst, rx, min, max, d, 2*d)
		}
		if ttl != 63 {
			t.Errorf("a -> %s: reply TTL %d, want 63 (the reply is not delayed: one hop)", dst, ttl)
		}
	}
	for _, dst := range []string{a6, a4} {
		// b -> a: the reply is what r forwards from a, so delayed, and it
		// passed r's routing twice.
		min, _, ttl, _ := ping(t, tp.b, dst, 3)
		if min < d || ttl != 62 {
			t.Errorf("b -> %s: RTT min %v, reply TTL %d; want at least %v and 62 (hop limit drops by 2 in a line)", dst, min, ttl, d)
		}
	}
	for _, dst := range []string{r6, r4} {
		// The router's own addresses are delivered locally, never delayed.
		if _, max, _, _ := ping(t, tp.a, dst, 3); max >= d {
			t.Errorf("a -> r's own %s: RTT %v, want below %v (local traffic is not delayed)", dst, max, d)
		}
	}
	if l.Delayed() < 16 || l.Dropped() != 0 {
		t.Errorf("counters: delayed %d, dropped %d; want at least 16 and 0", l.Delayed(), l.Dropped())
	}

	if err := l.SetDelay(2 * d); err != nil {
		t.Fatal(err)
	}
	if min, _, _, _ := ping(t, tp.a, b6, 3); min < 2*d {
		t.Errorf("after SetDelay(%v): RTT min %v", 2*d, min)
	}
	if err := l.SetDelay(-time.Second); err == nil {
		t.Error("SetDelay accepted a negative delay")
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if v := rpFilter(); v != "2" {
		t.Errorf("rp_filter %s after Close, want the old value 2", v)
	}
	for _, fam := range []string{"-6", "-4"} {
		out, err := tp.r.Run(ctx, "ip", fam, "rule", "show")
		if err != nil || strings.Contains(string(out), "lookup 4242") {
			t.Errorf("after Close, %s rules: %v\n%s", fam, err, out)
		}
	}
	if out, err := tp.r.Run(ctx, "ip", "-o", "link", "show"); err != nil || strings.Contains(string(out), "dl"+tp.raDev[2:]) {
		t.Errorf("after Close, the device is still there: %v\n%s", err, out)
	}
	for _, dst := range []string{b6, b4} {
		if _, max, ttl, rx := ping(t, tp.a, dst, 3); max >= d || rx != 3 || ttl != 63 {
			t.Errorf("after Close, a -> %s: RTT max %v, %d/3 replies, TTL %d", dst, max, rx, ttl)
		}
	}
}

// TestLineQueueLimit: a full queue drops packets and counts them, like a
// netem qdisc at its limit.
func TestLineQueueLimit(t *testing.T) {
	tp := newTopo(t)
	ctx := context.Background()
	l, err := Start(ctx, tp.r, tp.raDev, 200*time.Millisecond, Options{Device: "dq" + tp.raDev[2:], Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	// 20 echo requests at once: two fit in the queue.
	out, _ := tp.a.Run(ctx, "ping", "-n", "-c", "20", "-l", "20", "-W", "2", b6)
	m := rxRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ping output: %s", out)
	}
	rx, _ := strconv.Atoi(m[1])
	if rx < 1 || rx > 10 || l.Dropped() < 10 || l.Delayed() > 10 {
		t.Errorf("queue of 2, burst of 20: %d replies, delayed %d, dropped %d; want a few through and at least 10 dropped\n%s", rx, l.Delayed(), l.Dropped(), out)
	}
}

func TestStartRejects(t *testing.T) {
	tp := newTopo(t)
	ctx := context.Background()
	if _, err := Start(ctx, tp.r, tp.raDev, -time.Millisecond, Options{}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative delay: err = %v", err)
	}
	if _, err := Start(ctx, tp.r, tp.raDev, time.Millisecond, Options{Device: "a-name-too-long-for-linux"}); err == nil || !strings.Contains(err.Error(), "15 bytes") {
		t.Errorf("long device name: err = %v", err)
	}
	if _, err := Start(ctx, tp.r, tp.raDev, time.Millisecond, Options{Limit: -1}); err == nil || !strings.Contains(err.Error(), "limit -1") {
		t.Errorf("negative limit: err = %v", err)
	}
	// A device that is not there: refused, and nothing stays behind.
	if l, err := Start(ctx, tp.r, "nosuchdev0", time.Millisecond, Options{Device: "dlx" + tp.raDev[2:]}); err == nil || !strings.Contains(err.Error(), `"nosuchdev0"`) {
		if l != nil {
			l.Close()
		}
		t.Errorf("unknown iif: err = %v, want it named", err)
	}
	// A table clash (the default route exists already): Start fails and
	// removes its device.
	if _, err := tp.r.Run(ctx, "ip", "-6", "route", "add", "default", "dev", tp.raDev, "table", "4343"); err != nil {
		t.Fatal(err)
	}
	if l, err := Start(ctx, tp.r, tp.raDev, time.Millisecond, Options{Device: "dlx" + tp.raDev[2:], Table: 4343}); err == nil {
		l.Close()
		t.Error("Start succeeded over an existing table")
	}
	out, _ := tp.r.Run(ctx, "ip", "-o", "link", "show")
	if strings.Contains(string(out), "dlx") {
		t.Errorf("a failed or closed Start left its device:\n%s", out)
	}
}

func TestForwarded(t *testing.T) {
	v6 := func(dst string) []byte {
		p := make([]byte, 40)
		p[0] = 0x60
		a := netip.MustParseAddr(dst).As16()
		copy(p[24:], a[:])
		return p
	}
	v4 := func(dst string) []byte {
		p := make([]byte, 20)
		p[0] = 0x45
		a := netip.MustParseAddr(dst).As4()
		copy(p[16:], a[:])
		return p
	}
	for _, c := range []struct {
		pkt  []byte
		want bool
	}{
		{v6("2001:db8:d2::2"), true},
		{v6("ff02::2"), false},  // router solicitation
		{v6("ff02::16"), false}, // MLDv2 report
		{v6("fe80::1"), false},  // link-local
		{v4("198.18.22.2"), true},
		{v4("224.0.0.22"), false}, // IGMPv3 report
		{v4("255.255.255.255"), false},
		{v4("169.254.1.1"), false},
		{[]byte{0x60, 0}, false},  // truncated
		{make([]byte, 40), false}, // version 0
	} {
		if got := forwarded(c.pkt); got != c.want {
			t.Errorf("forwarded(%x...) = %v, want %v", c.pkt[:min(len(c.pkt), 2)], got, c.want)
		}
	}
}

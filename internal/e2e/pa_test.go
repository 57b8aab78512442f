package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/internal/testenv"
	"github.com/multihomed/multihomed/nptv6"
)

// paEnv is one test's PA lab with BIND and the daemon in its edge.
type paEnv struct {
	t      *testing.T
	lab    *lab.PALab
	daemon *lab.Daemon
	socket string
	secret []byte
}

func needPALab(t *testing.T) {
	testenv.Need(t, "ip", "vtysh", "/usr/lib/frr/bgpd", "named", "dig", "conntrack", "nft")
}

func newSecret(t *testing.T) []byte {
	s := make([]byte, 32)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// startPA brings the PA lab up with BIND serving the zone (with the
// daemon's key, dynamic, unless bind says otherwise) and the daemon in PA
// mode with the backend. Everything is torn down when the test ends; on
// failure the daemon's and BIND's logs are printed.
func startPA(t *testing.T, backend, profile string, bind *lab.PABIND) *paEnv {
	t.Helper()
	needPALab(t)
	if backend == "kernel" {
		testenv.Need(t, "ip6tables")
	}
	l, err := lab.UpPA(ctx, netns.UniqueID())
	if err != nil {
		t.Fatal(err)
	}
	e := &paEnv{t: t, lab: l, socket: filepath.Join(daemonDir(t), "api.sock"), secret: newSecret(t)}
	files := daemonFiles(t)
	pin, unmount := "", func() {}
	// The eBPF backend needs more than lab.DaemonCaps (privilege.Needs):
	// the daemon is given exactly that much more, and a bpffs of its own
	// that its user owns, as docs/operations.md tells operators.
	var caps []string
	if backend == "ebpf" {
		caps = lab.EBPFCaps
		dir := filepath.Join(daemonDir(t), "bpffs")
		if unmount, err = lab.MountBPFFS(dir); err != nil {
			l.Close()
			t.Fatal(err)
		}
		if err := daemonIdentity(t).Own(dir); err != nil {
			unmount()
			l.Close()
			t.Fatal(err)
		}
		pin = filepath.Join(dir, "nptv6")
	}
	t.Cleanup(func() {
		if e.daemon != nil {
			_ = e.daemon.Stop(10 * time.Second)
		}
		if t.Failed() {
			if e.daemon != nil {
				t.Logf("daemon log (tail):\n%s", tail(e.daemon.Log(), 120))
			}
			if l.BIND != nil {
				t.Logf("named log: %s", l.BIND.Dir)
			}
		}
		l.Close()
		unmount()
	})
	b := lab.PABIND{Secret: e.secret, Dynamic: true}
	if bind != nil {
		b = *bind
	}
	if err := l.StartBIND(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The TSIG key as docs/pa-mode.md lays it out: the daemon's, 0600.
	key, err := lab.WriteKeyFile(configDir(t), e.secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := daemonIdentity(t).Own(key); err != nil {
		t.Fatal(err)
	}
	files.writeConfig(lab.PAEdgeConfig(profile, backend, pin, key, files.stateDir) + fmt.Sprintf("api:\n  socket: %s\n", e.socket))
	if e.daemon, err = files.startDaemonIn(l.Edge, caps...); err != nil {
		t.Fatal(err)
	}
	return e
}

// via returns addr translated into the PA prefix (the RFC 6296 core, not
// the daemon's code path).
func via(t *testing.T, pa netip.Prefix, addr netip.Addr) netip.Addr {
	t.Helper()
	tr, err := nptv6.NewTranslator(nptv6.Mapping{Interface: "x", Internal: lab.PAInternal, External: pa})
	if err != nil {
		t.Fatal(err)
	}
	a, err := tr.Outbound(addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// status reads the daemon's status through mhctl.
func (e *paEnv) status() (*apiv1.Status, error) {
	out, stderr, code := mhctl(e.t, e.socket, "status", "-o", "json")
	if code != 0 {
		return nil, fmt.Errorf("mhctl status: exit %d: %s", code, stderr)
	}
	var st apiv1.Status
	if err := protojson.Unmarshal([]byte(out), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// resolvesTo waits until the server answers exactly want for the name.
func (e *paEnv) resolvesTo(what string, want []netip.Addr, timeout time.Duration) time.Time {
	e.t.Helper()
	slices.SortFunc(want, netip.Addr.Compare)
	var at time.Time
	eventually(e.t, what, timeout, func() (bool, string) {
		got, err := e.lab.Resolve(ctx)
		if err != nil {
			return false, err.Error()
		}
		at = time.Now()
		return slices.Equal(got, want), fmt.Sprint(got)
	})
	return at
}

// greetingPort is where the LAN host's server answers.
const greetingPort = 8080

// connects checks that the internet host reaches the published name over
// TCP through every address the server answers, each dialled on its own
// (a client that tries one address only must not fail either), and
// returns the addresses.
func (e *paEnv) connects(what string) []netip.Addr {
	e.t.Helper()
	var addrs []netip.Addr
	eventually(e.t, what+": a TCP connection from the internet host to each address of "+lab.PAName+" succeeds", 30*time.Second, func() (bool, string) {
		var err error
		addrs, err = e.lab.Resolve(ctx)
		if err != nil {
			return false, err.Error()
		}
		var failed []string
		for _, a := range addrs {
			if _, err := lab.DialGreeting(e.lab.Inet, []netip.Addr{a}, greetingPort, "hello from www", 2*time.Second); err != nil {
				failed = append(failed, err.Error())
			}
		}
		return len(failed) == 0, strings.Join(failed, "; ")
	})
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs
}

// TestPAEndToEnd (both NPTv6 backends): outbound flows carry ISP-A's PA
// prefix and, after a cut and after a gray failure of ISP-A, ISP-B's; the
// server publishes both translations of www, then ISP-B's alone, then both
// again; the internet host reaches www over TCP through each published
// address every time (while ISP-A carries egress too: replies leave by the
// uplink their connection came in on); the LAN host's
// IPv4 flow is NATed via ISP-A and, once ISP-A failed, its conntrack entry
// is gone and the same flow continues via ISP-B.
func TestPAEndToEnd(t *testing.T) {
	for _, backend := range []string{"ebpf", "kernel"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testPAEndToEnd(t, backend)
		})
	}
}

func testPAEndToEnd(t *testing.T, backend string) {
	e := startPA(t, backend, lab.ProfileFast, nil)
	l := e.lab
	wwwA, wwwB := via(t, lab.PAPrefixA, lab.PAWWW), via(t, lab.PAPrefixB, lab.PAWWW)
	lanA, lanB := via(t, lab.PAPrefixA, lab.PALANAddr6), via(t, lab.PAPrefixB, lab.PALANAddr6)
	e.resolvesTo("the server publishes www via both ISPs", []netip.Addr{wwwA, wwwB}, 90*time.Second)

	stopServe, err := lab.ServeGreeting(l.LAN, lab.PAWWW, greetingPort, "hello from www")
	if err != nil {
		t.Fatal(err)
	}
	defer stopServe()
	sink6, err := lab.StartSourceSink(l.Inet, lab.InetAddr6, 9999)
	if err != nil {
		t.Fatal(err)
	}
	defer sink6.Close()
	sink4, err := lab.StartSourceSink(l.Inet, lab.InetAddr4, 9999)
	if err != nil {
		t.Fatal(err)
	}
	defer sink4.Close()
	// One long IPv6 flow (stateless translation: it shows the moment the
	// route moves) and one IPv4 flow whose 5-tuple never changes.
	flow6, err := lab.StartSender(l.LAN, lab.PALANAddr6, netip.AddrPortFrom(lab.InetAddr6, 9999), "v6", 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer flow6.Stop()
	flow4, err := lab.StartSender(l.LAN, lab.PALANAddr4, netip.AddrPortFrom(lab.InetAddr4, 9999), "v4", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer flow4.Stop()

	// newFlowFrom waits until a new IPv6 flow from the LAN host reaches
	// the internet host from want.
	n := 0
	newFlowFrom := func(what string, want netip.Addr) {
		t.Helper()
		eventually(t, what, 30*time.Second, func() (bool, string) {
			n++
			tag := fmt.Sprintf("new-%d", n)
			s, err := lab.StartSender(l.LAN, lab.PALANAddr6, netip.AddrPortFrom(lab.InetAddr6, 9999), tag, 20*time.Millisecond)
			if err != nil {
				return false, err.Error()
			}
			defer s.Stop()
			var got netip.Addr
			for range 25 {
				time.Sleep(20 * time.Millisecond)
				if a, ok := sink6.Last(tag); ok {
					got = a
					break
				}
			}
			return got == want, fmt.Sprintf("the internet host saw %v", got)
		})
	}
	flow4From := func(what string, want netip.Addr) {
		t.Helper()
		eventually(t, what, 30*time.Second, func() (bool, string) {
			a, _ := sink4.Last("v4")
			return a == want, fmt.Sprintf("the internet host sees the IPv4 flow from %v", a)
		})
	}
	newFlowFrom("outbound via ISP-A's PA prefix", lanA)
	flow4From("the IPv4 flow NATed via ISP-A", lab.EdgeAAddr4)
	// ISP-A carries egress now; a connection through ISP-B's address is
	// answered through ISP-B all the same (returnpath), not from ISP-A's
	// prefix.
	if got := e.connects("both ISPs up, egress via ISP-A"); !slices.Equal(got, []netip.Addr{wwwA, wwwB}) {
		t.Errorf("connected to %v; want both published addresses %v", got, []netip.Addr{wwwA, wwwB})
	}
	// The server applies an update before the daemon records its answer
	// and publishes the status: status may still say "updating" for a
	// moment after the server answers with both addresses.
	eventually(t, "status: mode pa, DNS converged, ISP-A's mapping active and counting", 15*time.Second, func() (bool, string) {
		st, err := e.status()
		ok := err == nil && st.GetMode() == "pa" && st.GetDns().GetConverged() && st.GetUplinks()[0].GetTranslation().GetActive() && st.GetUplinks()[0].GetTranslation().GetOutPackets() > 0
		return ok, fmt.Sprintf("status: %v (%v)", st, err)
	})

	for _, sc := range []struct {
		name        string
		fault, heal func(context.Context) error
	}{{"link cut", l.CutISPA, l.RestoreISPA}, {"gray failure", l.GrayFailISPA, l.HealISPA}} {
		t0 := time.Now()
		if err := sc.fault(ctx); err != nil {
			t.Fatal(err)
		}
		newFlowFrom(sc.name+": new flows via ISP-B's PA prefix", lanB)
		dnsAt := e.resolvesTo(sc.name+": the server publishes www via ISP-B only", []netip.Addr{wwwB}, 60*time.Second)
		flow4From(sc.name+": the IPv4 flow continues via ISP-B", lab.EdgeBAddr4)
		out, err := l.Edge.Run(ctx, "conntrack", "-L", "-p", "udp", "-s", lab.PALANAddr4.String())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "dst="+lab.EdgeAAddr4.String()) {
			t.Errorf("%s: a conntrack entry NATed via ISP-A is left:\n%s", sc.name, out)
		}
		if got := e.connects(sc.name); !slices.Equal(got, []netip.Addr{wwwB}) {
			t.Errorf("%s: connected to %v; want ISP-B's %s alone", sc.name, got, wwwB)
		}
		if at, ok := sink6.FirstFrom("v6", lab.PAPrefixB, t0); ok {
			t.Logf("%s (%s): outbound via ISP-B %s after the fault; DNS answered ISP-B only within %s", sc.name, backend, at.Sub(t0).Round(time.Millisecond), dnsAt.Sub(t0).Round(10*time.Millisecond))
		}
		if err := sc.heal(ctx); err != nil {
			t.Fatal(err)
		}
		e.resolvesTo(sc.name+" healed: www via both ISPs again", []netip.Addr{wwwA, wwwB}, 60*time.Second)
		newFlowFrom(sc.name+" healed: new flows via ISP-A again", lanA)
		if got := e.connects(sc.name + " healed, egress via ISP-A"); !slices.Equal(got, []netip.Addr{wwwA, wwwB}) {
			t.Errorf("%s healed: connected to %v; want both published addresses", sc.name, got)
		}
	}
}

// TestPADNSFailures: a wrong key, a server that is down and a zone that
// refuses the key each show a clear error in status and the log, are
// retried, and the records converge once the server is fixed.
func TestPADNSFailures(t *testing.T) {
	t.Parallel()
	wrong := newSecret(t)
	e := startPA(t, "kernel", lab.ProfileFast, &lab.PABIND{Secret: wrong, Dynamic: true})
	l := e.lab
	wwwA, wwwB := via(t, lab.PAPrefixA, lab.PAWWW), via(t, lab.PAPrefixB, lab.PAWWW)

	failing := func(what, words string) {
		t.Helper()
		eventually(t, what+": status shows the error and retries", 60*time.Second, func() (bool, string) {
			st, err := e.status()
			if err != nil {
				return false, err.Error()
			}
			d := st.GetDns()
			return !d.GetConverged() && strings.Contains(d.GetLastError(), words) && d.GetFailures() >= 2, fmt.Sprint(d)
		})
		logged := slices.ContainsFunc(strings.Split(e.daemon.Log(), "\n"), func(line string) bool {
			return strings.Contains(line, "DNS update failing") && strings.Contains(line, words)
		})
		if !logged {
			t.Errorf("%s: the daemon did not log the failure (a \"DNS update failing\" line naming %q)", what, words)
		}
	}
	converged := func(what string, want []netip.Addr) {
		t.Helper()
		e.resolvesTo(what, want, 90*time.Second)
		eventually(t, what+": status converged", 30*time.Second, func() (bool, string) {
			st, err := e.status()
			return err == nil && st.GetDns().GetConverged() && st.GetDns().GetLastError() == "", fmt.Sprint(st.GetDns(), err)
		})
	}

	// Bad key: the server knows another secret.
	failing("bad key", "key")
	if err := l.StartBIND(ctx, lab.PABIND{Secret: e.secret, Dynamic: true}); err != nil {
		t.Fatal(err)
	}
	converged("bad key fixed: both published", []netip.Addr{wwwA, wwwB})

	// Server down while ISP-A fails: the desired state (ISP-B only) is
	// kept and published when the server is back.
	l.StopBIND()
	if err := l.CutISPA(ctx); err != nil {
		t.Fatal(err)
	}
	failing("server down", "unreachable")
	if err := l.StartBIND(ctx, lab.PABIND{Secret: e.secret, Dynamic: true}); err != nil {
		t.Fatal(err)
	}
	converged("server back: ISP-B only", []netip.Addr{wwwB})

	// Zone refused while ISP-A recovers.
	if err := l.StartBIND(ctx, lab.PABIND{Secret: e.secret, Dynamic: false}); err != nil {
		t.Fatal(err)
	}
	if err := l.RestoreISPA(ctx); err != nil {
		t.Fatal(err)
	}
	failing("zone refused", "refuse")
	if err := l.StartBIND(ctx, lab.PABIND{Secret: e.secret, Dynamic: true}); err != nil {
		t.Fatal(err)
	}
	converged("zone allowed again: both published", []netip.Addr{wwwA, wwwB})
}

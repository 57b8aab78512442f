package nptv6

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// helperEnv, when set, makes the test binary act as a short-lived
// controlling process: it sets the mappings given in the variable (JSON),
// closes its handles without purging, and exits. TestEBPFRestart uses it to
// prove that translation outlives the process that configured it.
const helperEnv = "NPTV6_TEST_HELPER"

type helperArgs struct {
	PinPath  string
	NetNS    string
	ForceTC  bool
	Mappings []Mapping
}

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		os.Exit(helperMain(v))
	}
	os.Exit(m.Run())
}

func helperMain(v string) int {
	var a helperArgs
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	e, err := NewEBPF(EBPFOptions{PinPath: a.PinPath, NetNS: a.NetNS, ForceTC: a.ForceTC})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if _, err := e.Set(context.Background(), a.Mappings); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	if err := e.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	return 0
}

func runHelper(t *testing.T, a helperArgs) {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controlling process failed: %v\n%s", err, out)
	}
}

// echoLoop runs a UDP request/response loop from the LAN host to the out
// host until stop is closed. Every request must be answered within a second
// and must reach the out host from the translated address: an interruption
// of translation, however short, shows up as a timeout or a wrong source.
type echoLoop struct {
	rounds, wrongSource, timeouts atomic.Int64
	done                          chan error
}

func startEchoLoop(t *testing.T, topo *lab.Translator, ext netip.Addr, stop <-chan struct{}) *echoLoop {
	srv := outServer(t, topo, 7300)
	cli := lanClient(t, topo, 7300)
	l := &echoLoop{done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if from.Addr() != ext {
				l.wrongSource.Add(1)
			}
			srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	go func() {
		defer srv.Close()
		defer cli.Close()
		buf := make([]byte, 64)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-stop:
				l.done <- nil
				return
			default:
			}
			msg := fmt.Sprintf("seq %d", i)
			cli.SetDeadline(time.Now().Add(time.Second))
			if _, err := cli.Write([]byte(msg)); err != nil {
				l.done <- err
				return
			}
			n, err := cli.Read(buf)
			if err != nil || string(buf[:n]) != msg {
				l.timeouts.Add(1)
				continue
			}
			l.rounds.Add(1)
		}
		l.done <- fmt.Errorf("echo loop did not stop")
	}()
	return l
}

// TestEBPFRestart: a controlling process sets the mappings and exits; the
// pinned programs and maps keep translating with no process holding them; a
// second process (an upgrade: it loads the programs anew and swaps them into
// the existing attachments) causes no interruption; and a new Datapath
// adopts the existing state: Mappings reports it before any Set, and Set of
// the same mappings keeps their counters.
func TestEBPFRestart(t *testing.T) {
	for _, mode := range []struct {
		name    string
		forceTC bool
	}{{"tcx", false}, {"tc", true}} {
		t.Run(mode.name, func(t *testing.T) {
			requirePrivileged(t)
			topo := newTopology(t)
			ctx := context.Background()
			a := helperArgs{
				PinPath: filepath.Join(bpffs(t), "nptv6"), NetNS: topo.Edge.Path(),
				ForceTC: mode.forceTC, Mappings: edgeMappings(topo),
			}
			t.Cleanup(func() {
				e, err := NewEBPF(EBPFOptions{PinPath: a.PinPath, NetNS: a.NetNS})
				if err != nil {
					t.Errorf("cleanup: %v", err)
					return
				}
				if err := e.Purge(ctx); err != nil {
					t.Errorf("cleanup purge: %v", err)
				}
				e.Close()
			})
			runHelper(t, a)
			tr, _ := NewTranslator(a.Mappings[0])
			ext, _ := tr.Outbound(lab.NPTLANHost)
			checkUDP(t, topo, ext) // nobody holds a handle now

			// An upgrade while traffic flows.
			stop := make(chan struct{})
			loop := startEchoLoop(t, topo, ext, stop)
			waitRounds(t, loop, 20)
			runHelper(t, a)
			start := loop.rounds.Load()
			waitRounds(t, loop, start+20)
			close(stop)
			if err := <-loop.done; err != nil {
				t.Fatal(err)
			}
			if n, w := loop.timeouts.Load(), loop.wrongSource.Load(); n != 0 || w != 0 {
				t.Fatalf("during the restart: %d requests unanswered, %d arrived untranslated (of %d)", n, w, loop.rounds.Load())
			}

			// Adoption by a new Datapath in this process.
			e, err := NewEBPF(EBPFOptions{PinPath: a.PinPath, NetNS: a.NetNS, ForceTC: mode.forceTC})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			got, err := e.Mappings(ctx)
			if err != nil || !equalMappings(got, SortMappings(a.Mappings)) {
				t.Fatalf("Mappings before Set = %v, %v; want the pinned %v", got, err, a.Mappings)
			}
			before, err := e.Counters(ctx)
			if err != nil || len(before) != 1 || before[0].OutPackets == 0 {
				t.Fatalf("counters before Set: %+v, %v", before, err)
			}
			setOrFatal(t, e, a.Mappings)
			after, err := e.Counters(ctx)
			if err != nil || len(after) != 1 || after[0].OutPackets < before[0].OutPackets {
				t.Fatalf("Set reset the counters: before %+v after %+v (%v)", before, after, err)
			}
			checkUDP(t, topo, ext)
		})
	}
}

func waitRounds(t *testing.T, l *echoLoop, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.rounds.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("echo loop reached %d rounds, want %d (timeouts %d)", l.rounds.Load(), n, l.timeouts.Load())
		}
		select {
		case err := <-l.done:
			t.Fatalf("echo loop ended: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestEBPFHairpin: the LAN host reaches its own external address; the
// packet turns around at the edge with both addresses translated (RFC 6296
// section 4.3), and so does the reply.
func TestEBPFHairpin(t *testing.T) {
	requirePrivileged(t)
	topo := newTopology(t)
	dp := ebpfBackend().new(t, topo)
	ms := []Mapping{{Interface: topo.EdgeUpIf, Internal: lab.NPTInternal, External: lab.NPTPA, Hairpin: true}}
	setOrFatal(t, dp, ms)
	tr, _ := NewTranslator(ms[0])
	ext, _ := tr.Outbound(lab.NPTLANHost)

	var srv, cli *net.UDPConn
	inNS(t, topo.LAN, func() (err error) {
		if srv, err = net.ListenUDP("udp6", &net.UDPAddr{IP: lab.NPTLANHost.AsSlice(), Port: 7200}); err != nil {
			return err
		}
		cli, err = net.ListenUDP("udp6", &net.UDPAddr{IP: lab.NPTLANHost.AsSlice()})
		return err
	})
	defer srv.Close()
	defer cli.Close()
	deadline := time.Now().Add(ioTimeout)
	srv.SetDeadline(deadline)
	cli.SetDeadline(deadline)
	if _, err := cli.WriteToUDPAddrPort([]byte("hairpin"), netip.AddrPortFrom(ext, 7200)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hairpin" {
		t.Fatalf("server: %q, %v", buf[:n], err)
	}
	if from.Addr() != ext {
		t.Errorf("server sees the hairpinned packet from %s, want the external %s", from.Addr(), ext)
	}
	if _, err := srv.WriteToUDPAddrPort([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	n, from, err = cli.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "back" || from != netip.AddrPortFrom(ext, 7200) {
		t.Fatalf("client: %q from %s, %v; want %q from [%s]:7200", buf[:n], from, err, "back", ext)
	}
	cs, err := dp.Counters(context.Background())
	if err != nil || len(cs) != 1 || cs[0].Hairpinned != 2 {
		t.Errorf("counters %+v, %v; want 2 hairpinned", cs, err)
	}
}

// TestKernelRefusesHairpin: ip6t_NPT cannot hairpin locally, and Set says
// so instead of silently not doing it.
func TestKernelRefusesHairpin(t *testing.T) {
	requirePrivileged(t, "ip6tables")
	topo := newTopology(t)
	dp := kernelBackend().new(t, topo)
	// A namespace where nothing was ever set reads back as empty.
	if got, err := dp.Mappings(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("Mappings on a fresh namespace = %v, %v", got, err)
	}
	ms := []Mapping{{Interface: topo.EdgeUpIf, Internal: lab.NPTInternal, External: lab.NPTPA, Hairpin: true}}
	got, err := dp.Set(context.Background(), ms)
	if !errorsIs(err, ErrHairpinUnsupported) || len(got) != 0 {
		t.Fatalf("Set = %v, %v; want nothing set and ErrHairpinUnsupported", got, err)
	}
}

// TestEBPFSwitchAttachMode: moving an uplink from TCX to a tc filter and
// back leaves exactly one attachment per hook, and translation goes on.
func TestEBPFSwitchAttachMode(t *testing.T) {
	requirePrivileged(t, "tc")
	topo := newTopology(t)
	ctx := context.Background()
	pin := filepath.Join(bpffs(t), "nptv6")
	ms := edgeMappings(topo)
	tr, _ := NewTranslator(ms[0])
	ext, _ := tr.Outbound(lab.NPTLANHost)
	state := func() (links int, filters int) {
		for _, dir := range []string{"egress", "ingress"} {
			if _, err := os.Stat(filepath.Join(pin, "link_"+topo.EdgeUpIf+"_"+dir)); err == nil {
				links++
			}
			out, err := topo.Edge.Run(ctx, "tc", "filter", "show", "dev", topo.EdgeUpIf, dir)
			if err == nil && strings.Contains(string(out), "npt_"+dir) {
				filters++
			}
		}
		return links, filters
	}
	for i, forceTC := range []bool{false, true, false} {
		e, err := NewEBPF(EBPFOptions{PinPath: pin, NetNS: topo.Edge.Path(), ForceTC: forceTC})
		if err != nil {
			t.Fatal(err)
		}
		setOrFatal(t, e, ms)
		links, filters := state()
		if forceTC && (links != 0 || filters != 2) || !forceTC && (links != 2 || filters != 0) {
			t.Fatalf("step %d (tc=%v): %d TCX links, %d tc filters; want one kind, two of it", i, forceTC, links, filters)
		}
		checkUDP(t, topo, ext)
		if i == 2 {
			if err := e.Purge(ctx); err != nil {
				t.Fatal(err)
			}
		}
		e.Close()
	}
}

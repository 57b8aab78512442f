package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// twoEdgeEnv is the two-edge lab with a daemon on each edge.
type twoEdgeEnv struct {
	lab    *lab.TwoEdge
	d1, d2 *lab.Daemon
	// edge1 is where edge-1's daemon keeps its files, for a restart.
	edge1 *env
}

// startTwoEdge brings the two-edge lab up with both daemons (fast probe
// profile). Everything is torn down when the test ends; on failure both
// daemons' and the routers' logs are printed.
func startTwoEdge(t *testing.T) *twoEdgeEnv {
	t.Helper()
	return startTwoEdgeWith(t, func(cfg string) string { return cfg })
}

// startTwoEdgeWith is startTwoEdge with edge-1's configuration passed
// through edit first.
func startTwoEdgeWith(t *testing.T, edit func(string) string) *twoEdgeEnv {
	t.Helper()
	needLab(t)
	l, err := lab.UpTwoEdge(ctx, lab.Options{ID: netns.UniqueID()})
	if err != nil {
		t.Fatal(err)
	}
	e := &twoEdgeEnv{lab: l}
	t.Cleanup(func() {
		for _, d := range []*lab.Daemon{e.d1, e.d2} {
			if d != nil {
				_ = d.Stop(10 * time.Second)
			}
		}
		if t.Failed() {
			for i, d := range []*lab.Daemon{e.d1, e.d2} {
				if d != nil {
					t.Logf("edge-%d daemon log (tail):\n%s", i+1, tail(d.Log(), 200))
				}
			}
			for name, r := range l.Routers() {
				t.Logf("%s log (tail):\n%s", name, tail(r.Log(), 30))
			}
		}
		l.Close()
	})
	// Each daemon (the current one: a test may restart edge-1) is stopped
	// by a cleanup registered after its files' temporary directories, so
	// that it runs before they are removed: a daemon still writing its
	// decision into a directory being removed fails the test.
	e.d1, e.edge1 = startEdgeDaemon(t, l.Edge, func(stateDir string) string { return edit(lab.Edge1Config(lab.ProfileFast, stateDir)) })
	t.Cleanup(func() { _ = e.d1.Stop(10 * time.Second) })
	e.d2, _ = startEdgeDaemon(t, l.Edge2, func(stateDir string) string { return lab.Edge2Config(lab.ProfileFast, stateDir) })
	t.Cleanup(func() { _ = e.d2.Stop(10 * time.Second) })
	return e
}

// startEdgeDaemon writes the configuration cfg returns for a state
// directory of the daemon's own, with an API socket of its own, and starts
// the daemon in ns as the unprivileged user; it returns the daemon and its
// files, for a restart.
func startEdgeDaemon(t *testing.T, ns *netns.NS, cfg func(stateDir string) string) (*lab.Daemon, *env) {
	t.Helper()
	e := daemonFiles(t)
	e.writeConfig(cfg(e.stateDir) + fmt.Sprintf("api:\n  socket: %s\n", filepath.Join(daemonDir(t), "api.sock")))
	d, err := e.startDaemonIn(ns, bindService)
	if err != nil {
		t.Fatal(err)
	}
	return d, e
}

// bindService is the capability (setpriv's name) an edge needs beyond
// lab.DaemonCaps: it listens on port 179 for the other edge
// (bgp.listen_port), as docs/deployment.md has it, and privilege.Needs asks
// for CAP_NET_BIND_SERVICE below 1024.
const bindService = "net_bind_service"

// siteState is where the site's traffic goes: the transit's AS paths for
// the site /48, the core's default (best edge and every edge's
// LOCAL_PREF), each edge's egress device toward the internet host.
func (e *twoEdgeEnv) siteState() (transit, core, egress1, egress2 string) {
	transit, err := e.lab.TransitPaths(ctx)
	if err != nil {
		transit = err.Error()
	}
	if core, err = e.lab.CoreDefault(ctx); err != nil {
		core = err.Error()
	}
	return transit, core, e.lab.EgressDevice(ctx), e.lab.EgressDevice2(ctx)
}

var (
	coreViaEdge1 = lab.Edge1CoreAddr6.String() + " "
	coreViaEdge2 = lab.Edge2CoreAddr6.String() + " "
)

// await waits until the site's routing matches: the transit holds one of
// transit, the core's best default is via core (coreViaEdge1/2), and the
// edges' egress devices are egress1 and egress2. It returns how long that
// took.
func (e *twoEdgeEnv) await(t *testing.T, what string, transit []string, core, egress1, egress2 string, timeout time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	eventually(t, what, timeout, func() (bool, string) {
		tr, c, e1, e2 := e.siteState()
		ok := slices.Contains(transit, tr) && strings.HasPrefix(c, core) && e1 == egress1 && e2 == egress2
		return ok, fmt.Sprintf("transit=%q core=%q edge-1 egress=%s edge-2 egress=%s", tr, c, e1, e2)
	})
	return time.Since(t0)
}

func (e *twoEdgeEnv) awaitSteady(t *testing.T, what string, timeout time.Duration) time.Duration {
	t.Helper()
	return e.await(t, what+": site via both ISPs, core via edge-1 at 200, each edge out through its ISP", lab.TransitBoth, coreViaEdge1, "eth-a", "eth-b", timeout)
}

// TestTwoEdgeFailover: a gray failure and a link cut of ISP-A, with a
// 1 kHz flow between the internet host and the LAN host behind the core.
// Edge-1 has no other uplink of its own, yet withdraws from ISP-A because
// edge-2's ISP-B is up (the transit sees the site only via ISP-B), stops
// sending the core its default (the core moves to edge-2), sends what
// still reaches it to edge-2, and does not go fail-static; the flow
// survives both ways, and recovery restores everything.
func TestTwoEdgeFailover(t *testing.T) {
	t.Parallel()
	e := startTwoEdge(t)
	l := e.lab
	e.awaitSteady(t, "steady state", 120*time.Second)
	eventually(t, "core holds both edges' defaults at LOCAL_PREF 200", 30*time.Second, func() (bool, string) {
		_, c, _, _ := e.siteState()
		return strings.Contains(c, lab.Edge1CoreAddr6.String()+"=200") && strings.Contains(c, lab.Edge2CoreAddr6.String()+"=200"), c
	})

	flow := startLANFlow(t, l.Lab)
	awaitCleanFlow(t, flow, "before the faults")
	for _, sc := range l.Scenarios()[:2] { // link cut, gray failure
		mark, logFrom := flow.Mark(), len(e.d1.Log())
		if err := sc.Fault(ctx); err != nil {
			t.Fatal(err)
		}
		moved := e.await(t, sc.Name+": site only via ISP-B, core via edge-2, edge-1 out via edge-2", lab.TransitOnlyB, coreViaEdge2, "eth-peer", "eth-b", 90*time.Second)
		awaitCleanFlow(t, flow, sc.Name+" after the move")
		r := flow.ReportSince(mark, 100*time.Millisecond)
		t.Logf("two-edge %s: moved in %s; loss window inbound (inet->lan) %s, outbound (lan->inet) %s [%v | %v]",
			sc.Name, moved.Round(time.Millisecond), r[0].LossWindow, r[1].LossWindow, r[0], r[1])
		if strings.Contains(e.d1.Log()[logFrom:], "ALARM fail-static") {
			t.Errorf("%s: edge-1 went fail-static although edge-2's ISP-B is usable", sc.Name)
		}
		if err := sc.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		back := e.awaitSteady(t, sc.Name+" recovered", 90*time.Second)
		t.Logf("two-edge %s: back in %s", sc.Name, back.Round(time.Millisecond))
		awaitCleanFlow(t, flow, sc.Name+" recovered")
	}
	// Edge-1 logged edge-2's view and its change.
	if !strings.Contains(e.d1.Log(), `msg="remote uplink" edge=`+lab.Edge2CoreAddr4.String()+" uplink=isp-b") {
		t.Errorf("edge-1 never logged edge-2's isp-b state:\n%s", tail(e.d1.Log(), 40))
	}
}

// TestTwoEdgeBothISPsFail: both ISPs fail at once (probe targets
// unreachable through either, BGP up): no uplink of the site is usable, so
// both edges hold the site (fail-static), raise the alarm, and the transit
// keeps both paths.
func TestTwoEdgeBothISPsFail(t *testing.T) {
	t.Parallel()
	e := startTwoEdge(t)
	l := e.lab
	e.awaitSteady(t, "steady state", 120*time.Second)
	if err := l.GrayFailISPA(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.GrayFailISPB(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the alarm on both edges", 60*time.Second, func() (bool, string) {
		a1, a2 := strings.Contains(e.d1.Log(), "ALARM fail-static"), strings.Contains(e.d2.Log(), "ALARM fail-static")
		return a1 && a2, fmt.Sprintf("edge-1 alarm %v, edge-2 alarm %v", a1, a2)
	})
	// Both keep announcing: the transit holds both paths once the edges
	// agree (one may have withdrawn for a moment while the other still
	// said its ISP was up).
	e.await(t, "both edges announcing in fail-static", lab.TransitBoth, "", "eth-a", "eth-b", 30*time.Second)
	if err := l.HealISPA(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.HealISPB(ctx); err != nil {
		t.Fatal(err)
	}
	e.awaitSteady(t, "recovered", 90*time.Second)
}

// startFlow starts the 1 kHz flow between the internet host and the LAN
// host and waits until it runs cleanly both ways.
func (e *twoEdgeEnv) startFlow(t *testing.T) *lab.Flow {
	t.Helper()
	flow := startLANFlow(t, e.lab.Lab)
	awaitCleanFlow(t, flow, "flow started")
	return flow
}

// TestTwoEdgeKill9Restart: edge-1's daemon is killed (-9) and started
// again. Graceful restart keeps its routes at ISP-A, at the core and at
// edge-2 meanwhile, and the kernel keeps forwarding, so the flow loses
// nothing inbound; after the restart edge-1 learns edge-2's state again
// and the site is as before.
func TestTwoEdgeKill9Restart(t *testing.T) {
	t.Parallel()
	e := startTwoEdge(t)
	e.awaitSteady(t, "steady state", 120*time.Second)
	eventually(t, "edge-1 learned edge-2's isp-b up", 30*time.Second, func() (bool, string) {
		return logLine(e.d1.Log(), `msg="remote uplink" edge=`+lab.Edge2CoreAddr4.String()+" uplink=isp-b", " to=up stale=false"), tail(e.d1.Log(), 5)
	})
	flow := e.startFlow(t)
	mark := flow.Mark()
	if err := e.d1.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-e.d1.Done()
	killed := time.Now()
	// While it is gone, edge-2 holds edge-1's word as stale (graceful
	// restart), so it does not count the site as one edge short.
	eventually(t, "edge-2 sees the session with edge-1 go", 30*time.Second, func() (bool, string) {
		return strings.Contains(e.d2.Log(), "stale=true"), tail(e.d2.Log(), 5)
	})
	killPhase := flow.ReportSince(mark, 100*time.Millisecond)
	mark2 := flow.Mark()
	d, err := e.edge1.startDaemonIn(e.lab.Edge, bindService)
	if err != nil {
		t.Fatal(err)
	}
	e.d1 = d
	eventually(t, "the restarted edge-1 re-learned edge-2's isp-b", 60*time.Second, func() (bool, string) {
		return strings.Contains(e.d1.Log(), `msg="remote uplink" edge=`+lab.Edge2CoreAddr4.String()+" uplink=isp-b"), tail(e.d1.Log(), 5)
	})
	e.awaitSteady(t, "after the restart", 60*time.Second)
	time.Sleep(time.Second) // let the flow run past the restart
	r := flow.ReportSince(mark, 100*time.Millisecond)
	restartPhase := flow.ReportSince(mark2, 100*time.Millisecond)
	t.Logf("edge-1 kill -9 and restart (back %s after the kill): inbound %v, outbound %v; while dead: %v / %v; from the restart: %v / %v",
		time.Since(killed).Round(time.Millisecond), r[0], r[1], killPhase[0], killPhase[1], restartPhase[0], restartPhase[1])
	if r[0].Lost != 0 {
		t.Errorf("inbound lost %d packets across edge-1's restart (loss window %s); graceful restart should keep it whole", r[0].Lost, r[0].LossWindow)
	}
	if r[1].Lost != 0 {
		t.Errorf("outbound lost %d packets across edge-1's restart (loss window %s)", r[1].Lost, r[1].LossWindow)
	}
}

// TestTwoEdgeEdgeDies: every link of edge-1 goes down at once (the box
// dies). ISP-A and the core see their link go and drop what edge-1 told
// them; where no carrier is lost, their hold timers bound it (9 s in the
// lab). The test measures how long the transit and the core take and the
// flow's loss windows (docs/deployment.md).
func TestTwoEdgeEdgeDies(t *testing.T) {
	t.Parallel()
	e := startTwoEdge(t)
	e.awaitSteady(t, "steady state", 120*time.Second)
	flow := e.startFlow(t)
	mark := flow.Mark()
	died := time.Now()
	for _, dev := range []string{"eth-a", "eth-core", "eth-peer"} {
		if _, err := e.lab.Edge.Run(ctx, "ip", "link", "set", dev, "down"); err != nil {
			t.Fatal(err)
		}
	}
	var transitAt, coreAt time.Duration
	eventually(t, "the transit reaches the site via ISP-B only, the core via edge-2", 60*time.Second, func() (bool, string) {
		tr, c, _, e2 := e.siteState()
		if transitAt == 0 && slices.Contains(lab.TransitOnlyB, tr) {
			transitAt = time.Since(died)
		}
		if coreAt == 0 && strings.HasPrefix(c, coreViaEdge2) {
			coreAt = time.Since(died)
		}
		return transitAt > 0 && coreAt > 0 && e2 == "eth-b", fmt.Sprintf("transit=%q core=%q edge-2 egress=%s", tr, c, e2)
	})
	eventually(t, "the flow runs again both ways", 30*time.Second, func() (bool, string) {
		m := flow.Mark()
		time.Sleep(500 * time.Millisecond) // a window to measure over
		r := flow.ReportSince(m, 100*time.Millisecond)
		return r[0].Sent > 100 && r[0].Lost == 0 && r[1].Sent > 100 && r[1].Lost == 0, fmt.Sprintf("%v / %v", r[0], r[1])
	})
	r := flow.ReportSince(mark, 100*time.Millisecond)
	t.Logf("edge-1 dies (links down): transit via ISP-B only after %s, core via edge-2 after %s; loss window inbound %s, outbound %s [%v | %v]",
		transitAt.Round(time.Millisecond), coreAt.Round(time.Millisecond), r[0].LossWindow, r[1].LossWindow, r[0], r[1])
	// Edge-2 loses the session with the hold timer; graceful restart keeps
	// edge-1's state as stale (shown, not counted) until restart_time.
	eventually(t, "edge-2 holds edge-1's state as stale", 30*time.Second, func() (bool, string) {
		return logLine(e.d2.Log(), `msg="remote uplink" edge=`+lab.Edge1CoreAddr4.String()+" uplink=isp-a", "stale=true"), tail(e.d2.Log(), 5)
	})
	t.Logf("edge-2 saw edge-1's state go stale %s after edge-1 died", time.Since(died).Round(time.Millisecond))
}

// TestTwoEdgeRoguePeerFiltered: edge-1 is told the core router (FRR) is an
// edge peer, and the core sends it the site's own prefix, a foreign
// prefix, a more-specific of the site and a /64 from the site-state range:
// edge-1 accepts none of them (its SIGUSR1 dump lists what internal peers
// sent that passed import). Then the core sends more routes than an edge
// ever has, and edge-1 closes the session (max-prefix).
func TestTwoEdgeRoguePeerFiltered(t *testing.T) {
	t.Parallel()
	core6 := `{neighbor: "` + lab.Core1Addr6.String() + `", local_address: "` + lab.Edge1CoreAddr6.String() + `",`
	e := startTwoEdgeWith(t, func(cfg string) string {
		out := strings.Replace(cfg, core6, core6+" role: edge, interface: eth-core,", 1)
		if out == cfg {
			t.Fatal("test broken: the core's IPv6 peer is not in edge-1's configuration")
		}
		return out
	})
	e.awaitSteady(t, "steady state", 120*time.Second)
	core := e.lab.CoreRouter
	rogue := []string{lab.SitePrefix6.String(), "2001:db8:face:8000::/49", "2001:db8:77::/48", "fd6d:6801::/64"}
	lines := []string{"router bgp 64500", "no bgp network import-check", "address-family ipv6 unicast"}
	for _, p := range rogue {
		lines = append(lines, "network "+p)
	}
	if err := core.Configure(ctx, lines...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "edge-1 received the core's routes", 30*time.Second, func() (bool, string) {
		s, err := core.Session(ctx, lab.Edge1CoreAddr6)
		if err != nil {
			return false, err.Error()
		}
		out, err := core.Vtysh(ctx, "show bgp ipv6 unicast neighbors "+lab.Edge1CoreAddr6.String()+" advertised-routes")
		return s.Established && strings.Contains(out, "2001:db8:77::/48"), out
	})
	// What internal peers sent that passed import, from edge-1's dump: only
	// edge-2's defaults and state routes, nothing of the core's.
	var learned string
	eventually(t, "edge-1's dump lists what its internal peers sent that passed import", 30*time.Second, func() (bool, string) {
		from := len(e.d1.Log())
		if err := e.d1.Signal(syscall.SIGUSR1); err != nil {
			return false, err.Error()
		}
		time.Sleep(200 * time.Millisecond) // the dump is written by the daemon
		for _, line := range strings.Split(e.d1.Log()[from:], "\n") {
			if strings.Contains(line, `msg="state: learned sample" uplink=""`) {
				learned = line
				return true, line
			}
		}
		return false, tail(e.d1.Log(), 5)
	})
	for _, p := range rogue {
		if strings.Contains(learned, p) {
			t.Errorf("edge-1 accepted %s from the core: %s", p, learned)
		}
	}
	if !strings.Contains(learned, "::/0") {
		t.Errorf("edge-1 lists no default from edge-2 (the dump is not what the test thinks): %s", learned)
	}

	// More than an edge ever sends: one default and 32 state routes.
	lines = []string{"router bgp 64500", "address-family ipv6 unicast"}
	for i := range 40 {
		lines = append(lines, fmt.Sprintf("network 2001:db8:77:%x::/64", i+1))
	}
	if err := core.Configure(ctx, lines...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "edge-1 closed the core's session on max-prefix", 30*time.Second, func() (bool, string) {
		s, err := core.Session(ctx, lab.Edge1CoreAddr6)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(strings.ToLower(s.LastReset), "prefix"), fmt.Sprintf("%+v", s)
	})
	// The other edge is unaffected.
	if _, c, _, e2 := e.siteState(); e2 != "eth-b" {
		t.Errorf("edge-2's egress moved to %s (core %s)", e2, c)
	}
}

// logLine reports whether one line of log contains every part.
func logLine(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

package e2e

import (
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// TestRestartKeepsSite: with a 1 kHz flow running both ways, the daemon is
// restarted with SIGTERM (a planned restart) and then killed with SIGKILL
// and started again (a crash), in the FRR lab and in the BIRD-inbound lab.
// ISP-A's and ISP-B's RIBs, polled every 20 ms from before the signal until
// both sessions are back and 2 s more, never lack the site /48 from the edge
// (graceful restart: stale marking is allowed, absence is not), and the
// flow loses nothing either way. The loss windows are printed
// (docs/benchmarks.md has `mhlab bench --restart` figures). The control,
// our graceful restart turned off, proves the watch sees a withdrawal: a
// planned restart then takes the /48 out of the ISPs' RIBs.
func TestRestartKeepsSite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    lab.Options
		control bool // bgp.graceful_restart: false
	}{{"FRR lab", lab.Options{}, false}, {"BIRD inbound", lab.Options{BIRDInbound: true}, false}, {"control without graceful restart", lab.Options{}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := lab.ScenarioConfig(lab.ProfileFast, daemonDir(t), false, true)
			if tc.control {
				cfg += "bgp:\n  graceful_restart: false\n"
			}
			e := start(t, tc.opts, cfg)
			l := e.lab
			if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 90*time.Second); err != nil {
				t.Fatalf("steady state: %v", err)
			}
			flow, err := lab.StartFlow(l.Inet, "inet", lab.InetAddr6, l.LAN, "lan", lab.LANAddr6, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			defer flow.Stop()
			kinds := []string{lab.RestartPlanned, lab.RestartCrash}
			if tc.control {
				kinds = kinds[:1]
			}
			for _, kind := range kinds {
				old := e.daemon
				nd, m, err := l.MeasureRestart(ctx, flow, old, kind, e.startDaemon, 2*time.Second, 90*time.Second)
				e.daemon = nd
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				t.Logf("%s (%s): old process gone in %s, sessions back in %s; ISP RIBs: %s; loss window inbound %s, outbound %s [%v | %v]",
					kind, tc.name, m.Down.Round(time.Millisecond), m.Back.Round(time.Millisecond), m.RIB,
					m.Inbound.LossWindow, m.Outbound.LossWindow, m.Inbound, m.Outbound)
				if tc.control {
					if len(m.RIB.Gaps) == 0 {
						t.Errorf("control: without graceful restart the ISPs never lacked the site /48 (%s): the watch cannot see a withdrawal", m.RIB)
					}
					return
				}
				if len(m.RIB.Gaps) > 0 {
					t.Errorf("%s: the site /48 left an ISP's RIB: %d polls without it, first %s at %s; the old daemon's log (tail):\n%s", kind, len(m.RIB.Gaps),
						m.RIB.Gaps[0].Router, m.RIB.Gaps[0].At.Format("15:04:05.000"), tail(old.Log(), 25))
				}
				// At least one good poll per 100 ms of the restart, or the
				// watch proves nothing.
				if good := m.RIB.Polls - m.RIB.Errors; time.Duration(good)*100*time.Millisecond < m.Back {
					t.Errorf("%s: only %d successful RIB polls over %s", kind, good, m.Back)
				}
				if m.Inbound.Received == 0 || m.Outbound.Received == 0 {
					t.Fatalf("%s: the flow did not run: %v / %v", kind, m.Inbound, m.Outbound)
				}
				if m.Inbound.Lost > 0 || m.Outbound.Lost > 0 {
					t.Errorf("%s: the flow lost packets: inbound %v, outbound %v", kind, m.Inbound, m.Outbound)
				}
				if _, err := l.AwaitRouting(ctx, lab.TransitBoth, "eth-a", 60*time.Second); err != nil {
					t.Fatalf("after the %s: %v", kind, err)
				}
			}
		})
	}
}

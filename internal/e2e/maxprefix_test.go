package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// sessionView is one BGP session in `mhctl status -o json`.
type sessionView struct {
	Neighbor, State, LastError, HeldDown string
}

// sessionsOf reads the uplink's sessions from `mhctl status -o json`.
func sessionsOf(t *testing.T, socket, uplink string) ([]sessionView, error) {
	var st struct {
		Uplinks []struct {
			Name     string
			Sessions []sessionView
		}
	}
	if err := statusJSON(t, socket, &st); err != nil {
		return nil, err
	}
	for _, u := range st.Uplinks {
		if u.Name == uplink {
			return u.Sessions, nil
		}
	}
	return nil, fmt.Errorf("no uplink %s in status", uplink)
}

// floodISPA makes ISP-A (FRR) originate 30 more prefixes in each family,
// which it sends to the edge, or stop originating them.
func floodISPA(t *testing.T, a *lab.FRR, on bool) {
	t.Helper()
	no := ""
	if !on {
		no = "no "
	}
	lines := []string{fmt.Sprintf("router bgp %d", lab.ASNISPA), "address-family ipv6 unicast"}
	for i := 0; i < 30; i++ {
		lines = append(lines, fmt.Sprintf("%snetwork 2001:db8:f0%02x::/48", no, i))
	}
	lines = append(lines, "exit-address-family", "address-family ipv4 unicast")
	for i := 0; i < 30; i++ {
		lines = append(lines, fmt.Sprintf("%snetwork 198.19.%d.0/24", no, i))
	}
	if err := a.Configure(ctx, lines...); err != nil {
		t.Fatal(err)
	}
}

// TestMaxPrefixRecovers: ISP-A (FRR) sends more than isp-a's max_prefixes
// (20) in both families. Both sessions go down and are held down; status
// names the cause on each session, the uplink's down event names it too,
// and the metric shows the hold. Once ISP-A sends less, the sessions come
// back by themselves after max_prefix_restart (15 s), not before the retry
// time status gave. A second flood, then `mhctl reset isp-a`, brings them
// back at once, well before that restart time.
func TestMaxPrefixRecovers(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(daemonDir(t), "api.sock")
	cfg := lab.EdgeConfig(map[string]string{"isp-a": "      max_prefixes: 20\n      max_prefix_restart: 15s\n"}) + fmt.Sprintf("api:\n  socket: %s\n", sock)
	e := start(t, lab.Options{}, cfg)
	a, ok := e.lab.ISPARouter.(*lab.FRR)
	if !ok {
		t.Fatal("test broken: ISP-A is not FRR")
	}
	waitEstablished(t, a, ispA...)

	// heldDown waits until both of isp-a's sessions are held down for
	// max-prefix and returns the earliest retry time status names.
	heldDown := func() time.Time {
		t.Helper()
		var retry time.Time
		eventually(t, "both isp-a sessions held down for max-prefix in status", 60*time.Second, func() (bool, string) {
			ss, err := sessionsOf(t, sock, "isp-a")
			if err != nil || len(ss) != 2 {
				return false, fmt.Sprint(ss, err)
			}
			retry = time.Time{}
			for _, s := range ss {
				if s.State == "established" || !strings.HasPrefix(s.HeldDown, "max-prefix exceeded: more than 20; retry at ") ||
					!strings.HasPrefix(s.LastError, "max-prefix exceeded") {
					return false, fmt.Sprintf("%+v", ss)
				}
				at, err := time.Parse(time.RFC3339, strings.TrimPrefix(s.HeldDown, "max-prefix exceeded: more than 20; retry at "))
				if err != nil {
					return false, err.Error()
				}
				if retry.IsZero() || at.Before(retry) {
					retry = at
				}
			}
			return true, ""
		})
		return retry
	}
	established := func(what string, within time.Duration) time.Time {
		t.Helper()
		eventually(t, what, within, func() (bool, string) {
			ss, err := sessionsOf(t, sock, "isp-a")
			if err != nil || len(ss) != 2 {
				return false, fmt.Sprint(ss, err)
			}
			for _, s := range ss {
				if s.State != "established" || s.HeldDown != "" {
					return false, fmt.Sprintf("%+v", ss)
				}
			}
			return true, ""
		})
		return time.Now()
	}

	floodISPA(t, a, true)
	retry := heldDown()
	eventually(t, "the isp-a down event names the max-prefix hold-down", 30*time.Second, func() (bool, string) {
		out, _, code := mhctl(t, sock, "events")
		return code == 0 && strings.Contains(out, "held down: ") && strings.Contains(out, "max-prefix exceeded: more than 20"), out
	})
	eventually(t, "metrics show both isp-a sessions held down", 15*time.Second, func() (bool, string) {
		m, err := scrapeEdge(e)
		if err != nil {
			return false, err.Error()
		}
		return m[`multihomed_bgp_session_held_down{neighbor=`+lab.ISPAAddr6.String()+`,uplink=isp-a}`] == 1 &&
			m[`multihomed_bgp_session_held_down{neighbor=`+lab.ISPAAddr4.String()+`,uplink=isp-a}`] == 1, ""
	})
	floodISPA(t, a, false)
	back := established("isp-a's sessions back after max_prefix_restart", 60*time.Second)
	// Status prints the retry time in whole seconds.
	if back.Before(retry.Add(-time.Second)) {
		t.Errorf("sessions back at %s, before the retry time %s status gave", back.Format(time.RFC3339Nano), retry.Format(time.RFC3339))
	}
	t.Logf("held down until %s, back at %s", retry.Format(time.RFC3339), back.Format(time.RFC3339Nano))
	waitEstablished(t, a, ispA...)

	floodISPA(t, a, true)
	retry = heldDown()
	floodISPA(t, a, false)
	if out, stderr, code := mhctl(t, sock, "reset", "isp-a", "--reason", "e2e: ISP-A fixed its table"); code != 0 {
		t.Fatalf("mhctl reset isp-a: exit %d: %s %s", code, out, stderr)
	}
	back = established("isp-a's sessions back after mhctl reset", 30*time.Second)
	if !back.Before(retry.Add(-5 * time.Second)) {
		t.Errorf("after mhctl reset the sessions came back at %s, not before the retry time %s: the reset did not end the hold-down", back.Format(time.RFC3339Nano), retry.Format(time.RFC3339))
	}
	t.Logf("second hold until %s; back after the reset at %s", retry.Format(time.RFC3339), back.Format(time.RFC3339Nano))
	if !strings.Contains(e.daemon.Log(), "audit") || !strings.Contains(e.daemon.Log(), "ISP-A fixed its table") {
		t.Errorf("the reset is not audited in the daemon's log:\n%s", tail(e.daemon.Log(), 20))
	}
}

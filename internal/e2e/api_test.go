package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// mhctl runs the mhctl binary against socket and returns its stdout,
// stderr and exit code.
func mhctl(t *testing.T, socket string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mhctlBinary, append([]string{"--socket", socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mhctl %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// statusJSON decodes `mhctl status -o json` into v.
func statusJSON(t *testing.T, socket string, v any) error {
	out, stderr, code := mhctl(t, socket, "status", "-o", "json")
	if code != 0 {
		return fmt.Errorf("mhctl status: exit %d: %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("status json: %v\n%s", err, out)
	}
	return nil
}

// uplinkState reads one uplink's state and announcement count from
// `mhctl status -o json`.
func uplinkState(t *testing.T, socket, uplink string) (state string, announced int, who string, err error) {
	var st struct {
		Uplinks []struct {
			Name, State string
			Announced   []json.RawMessage
			Override    *struct{ Who string }
		}
	}
	if err := statusJSON(t, socket, &st); err != nil {
		return "", 0, "", err
	}
	for _, u := range st.Uplinks {
		if u.Name == uplink {
			if u.Override != nil {
				who = u.Override.Who
			}
			return u.State, len(u.Announced), who, nil
		}
	}
	return "", 0, "", fmt.Errorf("no uplink %s in status", uplink)
}

// scrapeEdge fetches the daemon's metrics from its loopback listener
// inside the edge namespace.
func scrapeEdge(e *env) (map[string]float64, error) {
	return lab.ScrapeMetrics(e.lab.Edge, lab.MetricsAddr)
}

// TestMhctlDrain: against the real daemon in the lab, `mhctl drain isp-a`
// makes the route ISP-A's FRR holds carry GRACEFUL_SHUTDOWN (65535:0),
// then withdraws it after the drain grace; the drain survives a daemon
// restart; `mhctl undrain` restores the announcement; a reload with a
// broken file returns every problem and the daemon keeps running; the
// metrics endpoint shows the drain.
func TestMhctlDrain(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(daemonDir(t), "api.sock")
	cfg := lab.EdgeConfig(nil) + fmt.Sprintf("controller:\n  drain_grace: 8s\n  state_dir: %s\napi:\n  socket: %s\n", daemonDir(t), sock)
	e := start(t, lab.Options{}, cfg)
	holds := ispAHolds(t, e)

	// mhctl version shows, under its own build, the running daemon's as
	// the daemon binary prints it (GetVersion).
	own, err := exec.Command(daemonBinary, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	wantDaemon := "daemon:\n  " + strings.ReplaceAll(strings.TrimSuffix(string(own), "\n"), "\n", "\n  ") + "\n"
	if out, stderr, code := mhctl(t, sock, "version"); code != 0 || !strings.HasSuffix(out, wantDaemon) {
		t.Errorf("mhctl version: exit %d, stderr %q, output:\n%s\nwant it to end with the daemon's build:\n%s", code, stderr, out, wantDaemon)
	}

	if out, stderr, code := mhctl(t, sock, "drain", "isp-a", "--reason", "e2e maintenance"); code != 0 {
		t.Fatalf("mhctl drain: exit %d: %s %s", code, out, stderr)
	}
	holds("ISP-A holds the site /48 with GRACEFUL_SHUTDOWN", func(p lab.Path, ok bool) bool { return ok && isGShut(p) })
	holds("ISP-A no longer holds the site /48 (withdrawn after the grace)", func(_ lab.Path, ok bool) bool { return !ok })
	// Status is the snapshot the controller stores at the end of a pass,
	// and the pass sent the withdrawal before it got there: wait for it.
	eventually(t, "status shows isp-a drained, nothing announced, and who drained it", 10*time.Second, func() (bool, string) {
		state, n, who, err := uplinkState(t, sock, "isp-a")
		return err == nil && state == "drained" && n == 0 && strings.HasPrefix(who, "unix:uid="),
			fmt.Sprintf("state=%s announced=%d who=%q err=%v", state, n, who, err)
	})
	eventually(t, "metrics show isp-a drained", 15*time.Second, func() (bool, string) {
		m, err := scrapeEdge(e)
		if err != nil {
			return false, err.Error()
		}
		// The lab's table is small: the drain went out in place, with
		// outbound soft resets of isp-a's sessions only.
		resetsA := m[`multihomed_bgp_soft_resets_out_total{neighbor=`+lab.ISPAAddr6.String()+`,uplink=isp-a}`]
		resetsB := m[`multihomed_bgp_soft_resets_out_total{neighbor=`+lab.ISPBAddr6.String()+`,uplink=isp-b}`]
		return m[`multihomed_uplink_state{state=drained,uplink=isp-a}`] == 1 && m[`multihomed_override_active{kind=drain,uplink=isp-a}`] == 1 &&
				m[`multihomed_bgp_session_up{neighbor=`+lab.ISPBAddr6.String()+`,uplink=isp-b}`] == 1 && resetsA >= 1 && resetsB == 0,
			fmt.Sprintf("%d series; isp-a soft resets out %v, isp-b %v", len(m), resetsA, resetsB)
	})

	// A reload of a broken file: every problem back, exit 3, the daemon
	// keeps running with the drain in force.
	e.writeConfig(strings.NewReplacer("asn: 64500", "asn: 0", "neighbor: "+lab.ISPBAddr6.String(), "neighbor: 2001:db8::zz").Replace(cfg))
	_, stderr, code := mhctl(t, sock, "config", "reload")
	if code != 3 || !strings.Contains(stderr, "node.asn") || !strings.Contains(stderr, "uplinks[1].bgp.neighbor") {
		t.Errorf("reload of a broken file: exit %d, stderr:\n%s\nwant exit 3 naming node.asn and uplinks[1].bgp.neighbor", code, stderr)
	}
	select {
	case <-e.daemon.Done():
		t.Fatal("the daemon exited after a broken reload")
	default:
	}
	if state, _, _, err := uplinkState(t, sock, "isp-a"); err != nil || state != "drained" {
		t.Errorf("after the broken reload: isp-a %s (%v); want still drained", state, err)
	}
	e.writeConfig(cfg)

	// Restart: the drain is restored from the state directory.
	if err := e.daemon.Stop(15 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if e.daemon, err = e.startDaemon(); err != nil {
		t.Fatal(err)
	}
	waitEstablished(t, e.lab.ISPARouter, ispA...)
	eventually(t, "the restarted daemon reports isp-a drained", 30*time.Second, func() (bool, string) {
		state, n, _, err := uplinkState(t, sock, "isp-a")
		return err == nil && state == "drained" && n == 0, fmt.Sprintf("%s %d %v", state, n, err)
	})
	holds("after the restart ISP-A still does not hold the site /48", func(_ lab.Path, ok bool) bool { return !ok })
	if !strings.Contains(e.daemon.Log(), "override restored") {
		t.Errorf("the restarted daemon did not log the restored drain:\n%s", e.daemon.Log())
	}

	if out, stderr, code := mhctl(t, sock, "undrain", "isp-a"); code != 0 || !strings.Contains(out, "undrained") {
		t.Fatalf("mhctl undrain: exit %d: %s %s", code, out, stderr)
	}
	holds("after undrain ISP-A holds the site /48 again, without GRACEFUL_SHUTDOWN", func(p lab.Path, ok bool) bool { return ok && !isGShut(p) })
	if out, _, code := mhctl(t, sock, "events"); code != 0 || !strings.Contains(out, "drained") {
		t.Errorf("mhctl events: exit %d:\n%s", code, out)
	}
}

package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/multihomed/multihomed/controller"
)

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// gather collects m's families in-process, by name (scrape does it over
// HTTP).
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// value returns the value of the family's series with exactly labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("%s has no series %v", name, labels)
	return 0
}

// TestMetricsEndpoint serves the metrics on loopback, scrapes and parses
// them (expfmt) and checks the series a NOC alerts on.
func TestMetricsEndpoint(t *testing.T) {
	ctl := newFakeController()
	m := NewMetrics(ctl)
	clock := t0
	m.now = func() time.Time { return clock }
	// Probes: isp-a answers in 12 ms and 30 ms, then fails.
	m.ObserveProbe("isp-a", "icmp://2001:db8:9000::10", 12*time.Millisecond, nil)
	clock = t0.Add(time.Second)
	m.ObserveProbe("isp-a", "icmp://2001:db8:9000::10", 30*time.Millisecond, nil)
	m.ObserveProbe("isp-a", "icmp://2001:db8:9000::10", 0, errors.New("timeout"))

	// isp-b drained for an hour: the override's end is a series.
	drained := *ctl.Status()
	drained.Overrides = map[string]controller.Override{"isp-b": {Drain: true, Reason: "fibre work", Since: t0, Expires: t0.Add(time.Hour)}}
	ctl.status.Store(&drained)

	ctx, cancel := context.WithCancel(context.Background())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	served, ran := make(chan error, 1), make(chan error, 1)
	go func() { served <- ServeMetrics(ctx, addr, m, slogDiscard()) }()
	go func() { ran <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
		<-ran
	}()
	// isp-a goes down 1.8 s after its last good probe.
	ctl.mu.Lock()
	ctl.events = append(ctl.events, controller.Event{Seq: 1, Time: t0.Add(2800 * time.Millisecond), Uplink: "isp-a", From: controller.StateUp, To: controller.StateDown})
	ctl.next = 2
	ctl.mu.Unlock()
	ctl.addEvent("isp-a", controller.StateUp)

	url := "http://" + addr
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := http.Get(url + "/healthz"); err == nil {
			c.Body.Close()
			fams = scrape(t, url+"/metrics")
			if countersAbove0(fams["multihomed_uplink_state_changes_total"]) == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics endpoint never showed both state changes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"multihomed_uplink_state", []string{"uplink", "isp-a", "state", "up"}, 1},
		{"multihomed_uplink_state", []string{"uplink", "isp-b", "state", "degraded"}, 1},
		{"multihomed_uplink_state", []string{"uplink", "isp-b", "state", "up"}, 0},
		{"multihomed_probe_loss_ratio", []string{"uplink", "isp-b"}, 0.12},
		{"multihomed_probe_rtt_seconds", []string{"uplink", "isp-a"}, 2}, // sample count
		{"multihomed_probes_total", []string{"uplink", "isp-a", "result", "fail"}, 1},
		{"multihomed_bgp_session_up", []string{"uplink", "isp-a", "neighbor", "2001:db8:1000:1::1"}, 1},
		// 1 while held down (the fake's IPv4 session of isp-b is).
		{"multihomed_bgp_session_held_down", []string{"uplink", "isp-b", "neighbor", "2001:db8:2000:1::1"}, 0},
		{"multihomed_bgp_session_held_down", []string{"uplink", "isp-b", "neighbor", "198.18.2.1"}, 1},
		{"multihomed_bgp_soft_resets_out_total", []string{"uplink", "isp-b", "neighbor", "2001:db8:2000:1::1"}, 3},
		{"multihomed_bgp_import_phase", []string{"uplink", "isp-b", "neighbor", "2001:db8:2000:1::1", "phase", "counting"}, 1},
		{"multihomed_bgp_import_phase", []string{"uplink", "isp-b", "neighbor", "2001:db8:2000:1::1", "phase", "receiving"}, 0},
		{"multihomed_bgp_import_phase", []string{"uplink", "isp-a", "neighbor", "2001:db8:1000:1::1", "phase", "counting"}, 0},
		{"multihomed_bgp_soft_resets_out_total", []string{"uplink", "isp-a", "neighbor", "2001:db8:1000:1::1"}, 0},
		{"multihomed_announced_prefixes", []string{"uplink", "isp-b"}, 1},
		{"multihomed_announced_prepend", []string{"uplink", "isp-b", "prefix", "2001:db8:face::/48"}, 4},
		{"multihomed_announced_graceful_shutdown", []string{"uplink", "isp-a", "prefix", "2001:db8:face::/48"}, 0},
		{"multihomed_uplink_state_changes_total", []string{"uplink", "isp-a", "to", "down"}, 1},
		// At 0 from isp-a's first event on, so that increase() sees its first step.
		{"multihomed_uplink_state_changes_total", []string{"uplink", "isp-a", "to", "degraded"}, 0},
		{"multihomed_last_failover_seconds", []string{"uplink", "isp-a"}, 1.8},
		{"multihomed_reconcile_errors_total", nil, 0},
		{"multihomed_fail_static", nil, 0},
		{"multihomed_override_active", []string{"uplink", "isp-b", "kind", "drain"}, 1},
		{"multihomed_override_expires_timestamp_seconds", []string{"uplink", "isp-b", "kind", "drain"}, float64(t0.Add(time.Hour).Unix())},
		{"multihomed_override_active", []string{"uplink", "isp-a", "kind", "drain"}, 0},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v; want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("runtime metric %s missing", name)
		}
	}
	h := fams["multihomed_probe_rtt_seconds"].GetMetric()[0].GetHistogram()
	if s := h.GetSampleSum(); s < 0.0419 || s > 0.0421 {
		t.Errorf("RTT histogram sum = %v; want 0.042", s)
	}

	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %s; want 200 after passes", resp.Status)
	}
	st := *ctl.Status()
	st.Desired.Waiting = true
	ctl.status.Store(&st)
	resp, err = http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Status, "503") {
		t.Errorf("/readyz during the startup wait = %s; want 503", resp.Status)
	}
}

// countersAbove0 is how many series of the counter family f have counted
// something (state-change series exist at 0 from an uplink's first event).
func countersAbove0(f *dto.MetricFamily) int {
	n := 0
	for _, m := range f.GetMetric() {
		if m.GetCounter().GetValue() > 0 {
			n++
		}
	}
	return n
}

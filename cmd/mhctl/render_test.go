package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }

func med(v uint32) *uint32 { return &v }

// sampleStatus: ISP-A draining for maintenance, ISP-B degraded, ISP-C
// down with its session lost, an apply error pending.
func sampleStatus() *apiv1.Status {
	return &apiv1.Status{
		At: at(-2 * time.Second), Mode: "pi", InternalDefaultLocalPref: 100, ApplyError: "fib: replace ::/0 via 2001:db8:3000:1::1: no route to host", ReconcileErrors: 3,
		Uplinks: []*apiv1.Uplink{
			{
				Name: "isp-a", Interface: "eth-a", State: "drained", Reason: "operator drain: fibre work (cert:CN=noc-alice)",
				Probes: &apiv1.Probes{Probed: true, Verdict: "up", Reason: "2/2 targets up", TargetsUp: 2, TargetsNeeded: 1, RttMean: durationpb.New(11200 * time.Microsecond), RttP95: durationpb.New(14 * time.Millisecond), ReadAt: at(0),
					Targets: []*apiv1.Target{
						{Target: "icmp:2001:db8:53::1", State: "up", Samples: 20, RttLast: durationpb.New(10900 * time.Microsecond), RttMean: durationpb.New(11 * time.Millisecond), RttP95: durationpb.New(13 * time.Millisecond), MeasuredAt: at(-800 * time.Millisecond)},
						{Target: "icmp:192.0.2.53", State: "up", Samples: 20, RttLast: durationpb.New(11300 * time.Microsecond), RttMean: durationpb.New(11400 * time.Microsecond), RttP95: durationpb.New(14 * time.Millisecond), MeasuredAt: at(-1200 * time.Millisecond)},
					}},
				Sessions: []*apiv1.Session{{Neighbor: "2001:db8:1000:1::1", State: "established", Uptime: durationpb.New(26*time.Hour + 3*time.Minute)}, {Neighbor: "198.18.1.1", State: "established", Uptime: durationpb.New(26 * time.Hour)}},
				Announced: []*apiv1.Announcement{
					{Prefix: "2001:db8:face::/48", Communities: []string{"64501:100", "65535:0"}, LargeCommunities: []string{"64500:1:1"}, Med: med(10), GracefulShutdown: true},
					{Prefix: "198.51.100.0/24", Communities: []string{"64501:100", "65535:0"}, GracefulShutdown: true},
				},
				Egress: true, Metric: 2100,
				Override: &apiv1.Override{Drain: true, Reason: "fibre work", Who: "cert:CN=noc-alice", Since: at(-10 * time.Minute), Expires: at(110 * time.Minute)},
			},
			{
				Name: "isp-b", Interface: "eth-b", State: "degraded", Reason: "loss 12.0% over 10%",
				Probes: &apiv1.Probes{Probed: true, Verdict: "degraded", Reason: "loss 12.0% over 10%", LossPercent: 12, TargetsUp: 2, TargetsNeeded: 1, RttMean: durationpb.New(31 * time.Millisecond), RttP95: durationpb.New(48500 * time.Microsecond), ReadAt: at(0),
					Bursts: 9, BurstProbes: 23, BurstsSuppressed: 2,
					Targets: []*apiv1.Target{
						{Target: "icmp:2001:db8:53::1", State: "up", LossPercent: 20, Samples: 20, RttLast: durationpb.New(29 * time.Millisecond), RttMean: durationpb.New(31 * time.Millisecond), RttP95: durationpb.New(48 * time.Millisecond), MeasuredAt: at(-3 * time.Second), LastError: "timeout"},
						{Target: "tcp:[2001:db8:80::1]:443", State: "up", LossPercent: 4, Samples: 25, RttMean: durationpb.New(31 * time.Millisecond), RttP95: durationpb.New(49 * time.Millisecond)},
					}},
				Sessions:  []*apiv1.Session{{Neighbor: "2001:db8:2000:1::1", State: "established", Uptime: durationpb.New(3 * time.Hour)}},
				Announced: []*apiv1.Announcement{{Prefix: "2001:db8:face::/48", Prepend: 4, Communities: []string{"64502:200"}}},
				Egress:    true, Metric: 1110,
			},
			{
				Name: "isp-c", Interface: "eth-c", State: "down", Reason: "no BGP session established",
				Probes: &apiv1.Probes{},
				Sessions: []*apiv1.Session{
					{Neighbor: "2001:db8:3000:1::1", State: "active", Since: at(-95 * time.Second), LastError: "hold timer expired"},
					{Neighbor: "203.0.113.1", State: "idle", Since: at(-4 * time.Minute), HeldDown: "max-prefix exceeded: 1001 > 1000; retry at 2026-05-01T12:01:00Z", LastError: "peer exceeded max-prefix 1000"},
				},
			},
		},
		Egress: []*apiv1.EgressRoute{
			{Destination: "::/0", Metric: 1110, NextHops: []*apiv1.NextHop{{Gateway: "2001:db8:2000:1::1", Device: "eth-b"}}},
			{Destination: "::/0", Metric: 2100, NextHops: []*apiv1.NextHop{{Gateway: "2001:db8:1000:1::1", Device: "eth-a"}}},
		},
	}
}

func sampleEvents() []*apiv1.Event {
	return []*apiv1.Event{
		{Seq: 41, Time: at(-3 * time.Hour), Uplink: "isp-b", From: "up", To: "degraded", Reason: "loss 12.0% over 10%", Actions: []string{"announce prepend=4 communities=[64502:200]", "egress metric=1110"}},
		{Seq: 42, Time: at(-95 * time.Second), Uplink: "isp-c", From: "up", To: "down", Reason: "no BGP session established", Actions: []string{"withdraw", "no egress"}},
		{Seq: 43, Time: at(-10 * time.Minute), Uplink: "isp-a", From: "up", To: "drained", Reason: "operator drain: fibre work", Actions: []string{"announce prepend=0 graceful-shutdown", "egress metric=2100"}},
	}
}

func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/mhctl -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s (-want +got):\n%s", path, d)
	}
}

func TestGoldenTables(t *testing.T) {
	var b bytes.Buffer
	if err := renderStatus(&b, sampleStatus(), now); err != nil {
		t.Fatal(err)
	}
	golden(t, "status", b.String())
	b.Reset()
	if err := renderUplinks(&b, sampleStatus(), now); err != nil {
		t.Fatal(err)
	}
	golden(t, "uplinks", b.String())
	b.Reset()
	if err := renderEvents(&b, sampleEvents()); err != nil {
		t.Fatal(err)
	}
	golden(t, "events", b.String())
	b.Reset()
	fail := sampleStatus()
	fail.FailStatic, fail.Alarm, fail.Waiting = true, "every uplink down by the ladder; announcing where BGP is up", false
	fail.Uplinks = fail.Uplinks[1:2]
	if err := renderStatus(&b, fail, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-fail-static", b.String())
	b.Reset()
	if err := renderStatus(&b, twoEdgeStatus(), now); err != nil {
		t.Fatal(err)
	}
	if err := renderEvents(&b, twoEdgeEvents()); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-two-edge", b.String())
	// ibgp.advertise: full: each uplink says what the core gets from it.
	b.Reset()
	inside := sampleStatus()
	inside.InsideAdvertise = true
	inside.Uplinks[0].InsideLocalPref, inside.Uplinks[1].InsideLocalPref = 100, 100
	// isp-a's full tables: IPv6 counted, IPv4 in its recount; isp-b's in
	// its initial transfer.
	a6, a4, b6 := inside.Uplinks[0].Sessions[0], inside.Uplinks[0].Sessions[1], inside.Uplinks[1].Sessions[0]
	a6.Received, a6.Accepted = 200412, 200398
	a4.Received, a4.Accepted, a4.ImportPhase = 1000237, 0, "counting"
	b6.Received, b6.ImportPhase = 81920, "receiving"
	if err := renderStatus(&b, inside, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-inside", b.String())
}

// twoEdgeStatus: edge-1's only uplink is down and withdrawn; edge-2's
// isp-b is up, so no fail-static, and egress goes via edge-2.
func twoEdgeStatus() *apiv1.Status {
	return &apiv1.Status{
		At: at(-time.Second), Mode: "pi", RemoteUsable: 1,
		Uplinks: []*apiv1.Uplink{{Name: "isp-a", Interface: "eth-a", State: "down", Reason: "0/2 targets up", Probes: &apiv1.Probes{}}},
		RemoteUplinks: []*apiv1.RemoteUplink{
			{Edge: "198.51.100.2", Neighbor: "2001:db8:ffff::2", Uplink: "isp-b", State: "up", Since: at(-42 * time.Minute)},
			{Edge: "198.51.100.3", Neighbor: "2001:db8:ffff::3", Uplink: "isp-c", State: "down", Since: at(-20 * time.Second), Stale: true},
		},
		Egress: []*apiv1.EgressRoute{{Destination: "::/0", Metric: 3100, NextHops: []*apiv1.NextHop{{Gateway: "2001:db8:ffff::2", Device: "eth-lan"}}}},
	}
}

func twoEdgeEvents() []*apiv1.Event {
	return []*apiv1.Event{
		{Seq: 7, Time: at(-20 * time.Second), Edge: "198.51.100.3", Uplink: "isp-c", From: "up", To: "down", Reason: "edge 198.51.100.3 says isp-c is down", Actions: []string{"remote view changed"}},
	}
}

func TestYAMLOutput(t *testing.T) {
	out, err := toYAML(sampleStatus().GetUplinks()[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: isp-b\n", "state: degraded\n", "  - prefix: 2001:db8:face::/48\n", "    prepend: 4\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("yaml lacks %q:\n%s", want, out)
		}
	}
}

func TestParseFor(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "2h": 2 * time.Hour, "90m": 90 * time.Minute, "7d": 7 * 24 * time.Hour} {
		if got, err := parseFor(in); err != nil || got != want {
			t.Errorf("parseFor(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0s", "-1h", "2", "d", "1.5d", "soon"} {
		if _, err := parseFor(in); err == nil {
			t.Errorf("parseFor(%q) accepted", in)
		}
	}
}

func TestParseOverride(t *testing.T) {
	if r, err := parseOverride([]string{"isp-a", "prepend", "3"}); err != nil || r.GetPrepend().GetCount() != 3 {
		t.Errorf("prepend 3: %v, %v", r, err)
	}
	if r, err := parseOverride([]string{"isp-a", "force-down"}); err != nil || r.GetForceDown() == nil {
		t.Errorf("force-down: %v, %v", r, err)
	}
	for _, args := range [][]string{{"isp-a"}, {"isp-a", "prepend"}, {"isp-a", "prepend", "11"}, {"isp-a", "clear", "x"}, {"isp-a", "explode"}} {
		if _, err := parseOverride(args); err == nil {
			t.Errorf("parseOverride(%q) accepted", args)
		}
	}
}

// TestExitCodes: usage errors and an unreachable daemon have their codes,
// before any call is made.
func TestExitCodes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"--socket", sock, "status"}, exitUnreachable},
		{[]string{"--socket", sock, "-o", "xml", "status"}, exitUsage},
		{[]string{"--socket", sock, "drain", "isp-a"}, exitUsage}, // --reason is required
		{[]string{"--socket", sock, "frobnicate"}, exitUsage},
		{[]string{"--address", "192.0.2.1:50051", "status"}, exitUsage}, // TCP without --cacert
		{[]string{"completion", "bash"}, exitOK},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if got := run(t.Context(), tt.args, &out, &errb); got != tt.code {
			t.Errorf("mhctl %s: exit %d (%s); want %d", strings.Join(tt.args, " "), got, errb.String(), tt.code)
		}
	}
}

func FuzzParseOverride(f *testing.F) {
	f.Add("isp-a", "prepend", "3", "2h")
	f.Add("isp-a", "force-down", "", "7d")
	f.Add("", "clear", "x", "-5m")
	f.Fuzz(func(t *testing.T, uplink, action, arg, forStr string) {
		args := []string{uplink, action}
		if arg != "" {
			args = append(args, arg)
		}
		req, err := parseOverride(args)
		if err == nil {
			if p := req.GetPrepend(); p != nil && (p.GetCount() < 1 || p.GetCount() > 10) {
				t.Fatalf("accepted prepend %d", p.GetCount())
			}
			if req.GetAction() == nil {
				t.Fatal("accepted without an action")
			}
		}
		d, err := parseFor(forStr)
		if err == nil && forStr != "" && d <= 0 {
			t.Fatalf("parseFor(%q) = %v", forStr, d)
		}
		if err != nil && !errors.Is(err, err) {
			t.Fatal("unreachable")
		}
	})
}

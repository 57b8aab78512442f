package main

import (
	"slices"
	"testing"
	"time"
)

// TestParseFeedSizes: --tables reads V6/V4 pairs with k and M suffixes and
// refuses anything else with the flag's name.
func TestParseFeedSizes(t *testing.T) {
	got, err := parseFeedSizes("50k/0, 200k/1M,2000/1")
	if err != nil {
		t.Fatal(err)
	}
	want := []feedSize{{50000, 0}, {200000, 1000000}, {2000, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"50k", "0/0", "x/1", "1/-2", "1k/2G"} {
		if _, err := parseFeedSizes(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	if s := (feedSize{200000, 1000000}).String(); s != "200k IPv6 + 1M IPv4" {
		t.Errorf("String: %q", s)
	}
}

// TestTransferSummary: the bench prints the daemon's own account of the
// initial transfer from its log line, and nothing without one.
func TestTransferSummary(t *testing.T) {
	log := `time=2026-11-28T03:20:01.000Z level=INFO msg="bgp: initial transfer of a session over" peer=198.51.100.1 why=End-of-RIB
time=2026-11-28T03:20:10.000Z level=INFO msg="bgp: initial transfer done; counting from the update stream again" took=43.586s table_reads=9 reading=1.62s recount=9.374s`
	if got, want := transferSummary(log), "took 43.586s, 9 table reads, reading 1.62s, recount 9.374s"; got != want {
		t.Errorf("transferSummary = %q; want %q", got, want)
	}
	if got := transferSummary("time=2026-11-28T03:20:01.000Z level=INFO msg=started"); got != "" {
		t.Errorf("transferSummary of a log without the line = %q; want nothing", got)
	}
}

// TestDecisionAfter: the failover's decision time is the first "down"
// decision of that uplink logged at or after the failure (to the log's
// millisecond), not an earlier one, another uplink's or another state's.
func TestDecisionAfter(t *testing.T) {
	log := `time=2026-11-28T06:00:31.074Z level=INFO msg="uplink decision" uplink=feed from=unknown to=up reason="2 of 2 targets up" actions="[announce]"
time=2026-11-28T06:00:35.100Z level=INFO msg="uplink decision" uplink=feed from=up to=down reason="0 of 2 targets up" actions="[withdraw]"
time=2026-11-28T06:00:41.200Z level=INFO msg="uplink decision" uplink=backup from=up to=down reason="0 of 2 targets up" actions="[withdraw]"
time=2026-11-28T06:00:41.250Z level=INFO msg="uplink decision" uplink=feed from=up to=degraded reason="loss" actions="[prepend]"
time=2026-11-28T06:00:41.300Z level=INFO msg="uplink decision" uplink=feed from=degraded to=down reason="0 of 2 targets up" actions="[withdraw]"
`
	since := time.Date(2026, 11, 28, 6, 0, 41, 100_400_000, time.UTC)
	got, ok := decisionAfter(log, "feed", since)
	if want := time.Date(2026, 11, 28, 6, 0, 41, 300_000_000, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("decisionAfter = %v, %v; want %v", got, ok, want)
	}
	// The same millisecond as the failure counts: the log truncates.
	got, ok = decisionAfter(log, "feed", time.Date(2026, 11, 28, 6, 0, 35, 100_900_000, time.UTC))
	if want := time.Date(2026, 11, 28, 6, 0, 35, 100_000_000, time.UTC); !ok || !got.Equal(want) {
		t.Errorf("decisionAfter in the failure's millisecond = %v, %v; want %v", got, ok, want)
	}
	if got, ok := decisionAfter(log, "feed", time.Date(2026, 11, 28, 6, 1, 0, 0, time.UTC)); ok {
		t.Errorf("no decision after the last one, got %v", got)
	}
}

package main

import (
	"slices"
	"testing"
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

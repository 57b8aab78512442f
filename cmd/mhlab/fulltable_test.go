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

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

func dirs(in time.Duration, inNever bool) [2]lab.CompareDir {
	return [2]lab.CompareDir{{LossWindow: in, Unresolved: inNever, Sent: 100, Lost: 10}, {Sent: 100}}
}

// TestMedianWorst: a run that never moved sorts after every run that did,
// medians of an even count average two measured windows, and "never" is
// printed rather than the hold time it carries.
func TestMedianWorst(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name       string
		runs       [][2]lab.CompareDir
		med, worst string
	}{
		{"odd", [][2]lab.CompareDir{dirs(300*ms, false), dirs(100*ms, false), dirs(200*ms, false)}, "200ms", "300ms"},
		{"even", [][2]lab.CompareDir{dirs(100*ms, false), dirs(300*ms, false)}, "200ms", "300ms"},
		// The never-run's window (the hold, 12 s) is longer than any
		// other but must not be printed as a figure.
		{"one never", [][2]lab.CompareDir{dirs(12*time.Second, true), dirs(100*ms, false), dirs(200*ms, false)}, "200ms", "never"},
		// Never is worse than a longer measured window.
		{"never beats longer", [][2]lab.CompareDir{dirs(time.Second, true), dirs(5*time.Second, false), dirs(6*time.Second, false)}, "6s", "never"},
		{"mostly never", [][2]lab.CompareDir{dirs(12*time.Second, true), dirs(12*time.Second, true), dirs(100*ms, false)}, "never", "never"},
		{"even with never", [][2]lab.CompareDir{dirs(12*time.Second, true), dirs(100*ms, false)}, "never", "never"},
	} {
		var rs []lab.CompareResult
		for _, d := range tc.runs {
			rs = append(rs, lab.CompareResult{Edge: "e", Scenario: "s", Dirs: d})
		}
		med, worst := medianWorst(rs, 0)
		if med != tc.med || worst != tc.worst {
			t.Errorf("%s: median %s worst %s; want %s %s", tc.name, med, worst, tc.med, tc.worst)
		}
	}
}

// TestSummaryGroups: one row per edge and scenario, in first-seen order,
// with the run count.
func TestSummaryGroups(t *testing.T) {
	ms := time.Millisecond
	rs := []lab.CompareResult{
		{Edge: "frr", Scenario: "link cut", Dirs: dirs(100*ms, false)},
		{Edge: "frr", Scenario: "gray failure", Dirs: dirs(12*time.Second, true)},
		{Edge: "frr", Scenario: "link cut", Dirs: dirs(120*ms, false)},
	}
	var b strings.Builder
	if err := summary(&b, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want header and 2 rows:\n%s", len(lines), b.String())
	}
	if f := strings.Fields(lines[1]); f[0] != "frr" || f[1] != "link" || f[3] != "2" || f[4] != "110ms" || f[5] != "120ms" {
		t.Errorf("link cut row %q", lines[1])
	}
	if !strings.Contains(lines[2], "never") || !strings.Contains(lines[2], "10.0%") {
		t.Errorf("gray failure row %q: want never and 10.0%% lost", lines[2])
	}
}

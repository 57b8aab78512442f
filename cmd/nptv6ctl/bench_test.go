package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want spread
	}{
		{[]float64{3}, spread{3, 3, 3}},
		{[]float64{5, 1, 3}, spread{3, 1, 5}},
		{[]float64{4, 1, 2, 3}, spread{2.5, 1, 4}},
	} {
		in := append([]float64(nil), c.in...)
		if got := summarize(in); got != c.want {
			t.Errorf("summarize(%v) = %+v, want %+v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("summarize reordered its input: %v", in)
			}
		}
	}
}

// TestBenchReportPairsRounds: the machine's speed changes from round to
// round, the translator always costs the same share of it. The per-round
// ratio sees exactly that share; a ratio of medians would not.
func TestBenchReportPairsRounds(t *testing.T) {
	plain := []float64{1000, 600, 1100, 500, 900}
	res := map[string][]sample{}
	for _, p := range plain {
		res["plain"] = append(res["plain"], sample{pps: p, cpuNs: 1e6 / p})
		res["ebpf"] = append(res["ebpf"], sample{pps: 0.9 * p, cpuNs: 1e6 / (0.9 * p)})
	}
	// Rotate ebpf against plain: its median no longer comes from the same
	// round as plain's, which a ratio of medians would not notice.
	res["ebpf"] = slices.Concat(res["ebpf"][1:], res["ebpf"][:1])
	out := benchReport([]string{"plain", "ebpf"}, res, len(plain), 1000, 1)
	if strings.Contains(out, "90.0% ( 90.0.. 90.0%)") {
		t.Fatalf("rotated samples gave a constant ratio:\n%s", out)
	}
	res["ebpf"] = slices.Concat(res["ebpf"][len(plain)-1:], res["ebpf"][:len(plain)-1])
	out = benchReport([]string{"plain", "ebpf"}, res, len(plain), 1000, 1)
	if !strings.Contains(out, "ebpf               90.0% ( 90.0.. 90.0%)") {
		t.Fatalf("per-round ratios are not 90%% in every round:\n%s", out)
	}
}

func TestBenchRejectsUnknownConfig(t *testing.T) {
	err := bench(context.Background(), []string{"-configs", "ebpf,nat66"})
	if err == nil || !strings.Contains(err.Error(), `"nat66"`) {
		t.Fatalf("unknown configuration: err = %v, want it named", err)
	}
}

// TestBenchRuns runs a small bench through every configuration: the
// topologies come up, each translator is checked to be in the path of
// every burst, and everything is removed again.
func TestBenchRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("needs root for network namespaces, eBPF and ip6tables; skipped because CI is not set")
		}
		t.Fatal("needs root, and CI is set: it must run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := bench(ctx, []string{"-packets", "2000", "-rounds", "2", "-cpu", "0", "-configs", "tcx-noop,ebpf,ebpf-tc,ip6t_NPT"}); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// feedSize is one table of the full-table bench: IPv6 and IPv4 prefixes.
type feedSize struct{ v6, v4 int }

func (s feedSize) String() string {
	return fmt.Sprintf("%s IPv6 + %s IPv4", count(s.v6), count(s.v4))
}

func count(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

// parseFeedSizes reads --tables: comma-separated V6/V4 counts, each a
// number with an optional k or M suffix ("50k/0,200k/1M").
func parseFeedSizes(s string) ([]feedSize, error) {
	num := func(x string) (int, error) {
		mult := 1
		switch {
		case strings.HasSuffix(x, "k"):
			mult, x = 1000, strings.TrimSuffix(x, "k")
		case strings.HasSuffix(x, "M"):
			mult, x = 1000000, strings.TrimSuffix(x, "M")
		}
		n, err := strconv.Atoi(x)
		return n * mult, err
	}
	var out []feedSize
	for _, f := range splitList(s) {
		a, b, ok := strings.Cut(f, "/")
		v6, err6 := num(a)
		v4, err4 := num(b)
		if !ok || err6 != nil || err4 != nil || v6 < 0 || v4 < 0 || v6+v4 == 0 {
			return nil, fmt.Errorf("--tables: %q is not IPV6/IPV4 counts (for example 50k/0 or 200k/1M)", f)
		}
		out = append(out, feedSize{v6, v4})
	}
	return out, nil
}

// benchFullTable runs the full-table bench for each size: a BIRD feeder,
// then multihomed, BIRD and FRR receiving its table one after the other,
// and prints one table with ratios against the same run's BIRD and FRR.
func benchFullTable(ctx context.Context, daemon string, sizes []feedSize, paths int, timeout time.Duration, verbose bool) error {
	pathsText := "a distinct path per prefix"
	if paths > 0 {
		pathsText = fmt.Sprintf("%d distinct paths", paths)
	}
	step("Full tables: a BIRD 2 feeder (AS%d, %s) and, in turn, multihomed, BIRD 2 and FRR bgpd receiving (AS%d); %s",
		lab.FullTableFeederASN, pathsText, lab.FullTableReceiverASN, loadavg())
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "| table\t| receiver\t| converge\t| CPU s\t| max RSS\t| vs BIRD (time, RSS)\t| vs FRR (time, RSS)\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	for _, s := range sizes {
		res, err := fullTableRun(ctx, daemon, s, paths, timeout, verbose)
		for _, r := range res {
			fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %.1f\t| %d MB\t| %s\t| %s\t|\n", s, r.Receiver, converge(r), r.CPU.Seconds(), r.MaxRSS/1e6,
				ratio(r, res, "bird"), ratio(r, res, "frr"))
		}
		if err != nil {
			tw.Flush()
			return err
		}
	}
	fmt.Println()
	return tw.Flush()
}

// loadavg returns the machine's load (as uptime prints it), to note beside
// figures measured on a shared machine.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return "load average " + strings.Join(f[:3], " ")
	}
	return "load average unknown"
}

func converge(r lab.FullTableResult) string {
	if !r.Finished {
		return fmt.Sprintf("not finished in %s (%d accepted)", r.Converge.Round(time.Second), r.Accepted)
	}
	return r.Converge.Round(10 * time.Millisecond).String()
}

// ratio is r's convergence time and peak RSS over those of the receiver
// named other in the same run.
func ratio(r lab.FullTableResult, all []lab.FullTableResult, other string) string {
	if r.Receiver == other {
		return "1"
	}
	for _, o := range all {
		if o.Receiver != other || !o.Finished || o.Converge == 0 || o.MaxRSS == 0 {
			continue
		}
		t := "-"
		if r.Finished {
			t = fmt.Sprintf("%.1fx", r.Converge.Seconds()/o.Converge.Seconds())
		}
		return fmt.Sprintf("%s, %.1fx", t, float64(r.MaxRSS)/float64(o.MaxRSS))
	}
	return "-"
}

// fullTableRun measures one size: it returns what it measured so far even
// when a later receiver fails.
func fullTableRun(ctx context.Context, daemon string, s feedSize, paths int, timeout time.Duration, verbose bool) ([]lab.FullTableResult, error) {
	step("%s: starting the feeder", s)
	ft, err := lab.UpFullTable(ctx, netns.UniqueID(), s.v6, s.v4, paths)
	if err != nil {
		return nil, err
	}
	defer ft.Close()
	fmt.Printf("   feeder loaded its table in %s\n", ft.FeederLoad.Round(100*time.Millisecond))
	dir, err := os.MkdirTemp("", "mhlab-fulltable-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	starts := []func() (*lab.FullTableReceiver, error){
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableDaemon(ctx, daemon, dir) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableBIRD(ctx) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableFRR(ctx) },
	}
	var results []lab.FullTableResult
	for _, start := range starts {
		r, err := start()
		if err != nil {
			return results, err
		}
		begin := time.Now()
		res, err := ft.MeasureFullTable(ctx, r, 100*time.Millisecond, timeout)
		if err != nil || verbose {
			fmt.Println(r.Log())
		}
		r.Stop()
		if err != nil {
			return results, fmt.Errorf("%s: %w", r.Name, err)
		}
		fmt.Printf("   %s: %s, %.1f CPU s, %d MB peak RSS (%s wall in all)\n", r.Name, converge(res), res.CPU.Seconds(), res.MaxRSS/1e6,
			time.Since(begin).Round(time.Second))
		if r.Name == "multihomed" {
			if sum := transferSummary(r.Log()); sum != "" {
				fmt.Printf("   multihomed's initial transfer: %s\n", sum)
			}
		}
		results = append(results, res)
	}
	return results, nil
}

// runFullTable checks the arguments of `mhlab bench fulltable` and runs it.
func runFullTable(ctx context.Context, daemon, tables string, paths int, timeout time.Duration, verbose bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces); run it with sudo")
	}
	sizes, err := parseFeedSizes(tables)
	if err != nil {
		return err
	}
	if paths < 0 {
		return fmt.Errorf("--paths: %d is negative; give 0 for a distinct path per prefix, or the number of distinct paths", paths)
	}
	abs, err := filepath.Abs(daemon)
	if err != nil {
		return err
	}
	return benchFullTable(ctx, abs, sizes, paths, timeout, verbose)
}

// transferSummary picks, from the daemon's log, the figures of its line
// "initial transfer done": the whole transfer (took), the max-prefix reads
// of GoBGP's tables and their time, and the recount at the end. It
// returns "" when the log has no such line.
func transferSummary(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "initial transfer done") {
			continue
		}
		var parts []string
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			switch k {
			case "took":
				parts = append(parts, "took "+v)
			case "table_reads":
				parts = append(parts, v+" table reads")
			case "reading":
				parts = append(parts, "reading "+v)
			case "recount":
				parts = append(parts, "recount "+v)
			}
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

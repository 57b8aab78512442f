package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// fullTableOpts are the arguments of `mhlab bench fulltable`.
type fullTableOpts struct {
	daemon  string // absolute path of multihomed
	paths   int
	timeout time.Duration
	verbose bool
	// failover adds the kernel-install run: multihomed with bgp.install
	// and ISP-B, and ISP-A's failure timed in the kernel.
	failover bool
}

// benchFullTable runs the full-table bench for each size: a BIRD feeder,
// then multihomed, GoBGP alone, BIRD and FRR receiving its table one after the other,
// and prints one table with ratios against the same run's BIRD and FRR;
// with o.failover, then a table of the kernel-install failovers.
func benchFullTable(ctx context.Context, o fullTableOpts, sizes []feedSize) error {
	pathsText := "a distinct path per prefix"
	if o.paths > 0 {
		pathsText = fmt.Sprintf("%d distinct paths", o.paths)
	}
	step("Full tables: a BIRD 2 feeder (AS%d, %s) and, in turn, multihomed, GoBGP alone (mhlab bare-gobgp), BIRD 2 and FRR bgpd receiving (AS%d); %s",
		lab.FullTableFeederASN, pathsText, lab.FullTableReceiverASN, loadavg())
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "| table\t| receiver\t| converge\t| every route in the RIB (vs FRR)\t| CPU s\t| max RSS\t| vs GoBGP alone (time, RSS)\t| vs BIRD (time, RSS)\t| vs FRR (time, RSS)\t|")
	fmt.Fprintln(tw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	var fbuf strings.Builder
	fw := tabwriter.NewWriter(&fbuf, 2, 4, 2, ' ', 0)
	fmt.Fprintln(fw, "| table\t| routes in the kernel\t| installed after\t| nexthop_compat_mode\t| ISP-A down decided\t| egress default off ISP-A\t| no kernel route via ISP-A\t| of that, after the decision\t| back on ISP-A after healing\t|")
	fmt.Fprintln(fw, "|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|---\t|")
	flush := func() error {
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Println()
		fmt.Print(buf.String())
		if o.failover {
			if err := fw.Flush(); err != nil {
				return err
			}
			fmt.Println()
			fmt.Print(fbuf.String())
		}
		fmt.Println()
		return nil
	}
	for _, s := range sizes {
		res, fos, err := fullTableRun(ctx, o, s)
		for _, r := range res {
			fmt.Fprintf(tw, "| %s\t| %s\t| %s\t| %s\t| %.1f\t| %d MB\t| %s\t| %s\t| %s\t|\n", s, r.Receiver, converge(r), inRIB(r, res), r.CPU.Seconds(), r.MaxRSS/1e6,
				ratio(r, res, "gobgp"), ratio(r, res, "bird"), ratio(r, res, "frr"))
		}
		for _, f := range fos {
			fmt.Fprintf(fw, "| %s\t| %s\t| %s\t| %d\t| %s\t| %s\t| %s\t| %s\t| %s\t|\n", s, count(f.Routes), f.installed.Round(100*time.Millisecond),
				f.CompatMode, ms(f.decided), ms(f.Egress), ms(f.Moved), ms(f.Moved-f.decided), ms(f.Restored))
		}
		if err != nil {
			_ = flush()
			return err
		}
	}
	return flush()
}

// ms prints d in milliseconds, to the tenth.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

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

// inRIB is the time until every route was in r's RIB, and its ratio to
// FRR's convergence in the same run (FRR counts a route when it is in its
// RIB).
func inRIB(r lab.FullTableResult, all []lab.FullTableResult) string {
	if !r.Finished || r.InRIB <= 0 {
		return "-"
	}
	out := r.InRIB.Round(10 * time.Millisecond).String()
	for _, o := range all {
		if o.Receiver == "frr" && o.Finished && o.Converge > 0 {
			out += fmt.Sprintf(" (%.2fx)", r.InRIB.Seconds()/o.Converge.Seconds())
		}
	}
	return out
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

// failoverResult is one failover of the kernel-install run, with the time
// the run took to install the feed.
type failoverResult struct {
	lab.InstallFailover
	installed time.Duration
	// decided is the time from the failure until the daemon logged its
	// decision that ISP-A is down (to the log's millisecond).
	decided time.Duration
}

// fullTableRun measures one size: it returns what it measured so far even
// when a later receiver fails.
func fullTableRun(ctx context.Context, o fullTableOpts, s feedSize) ([]lab.FullTableResult, []failoverResult, error) {
	step("%s: starting the feeder", s)
	ft, err := lab.UpFullTable(ctx, netns.UniqueID(), s.v6, s.v4, o.paths)
	if err != nil {
		return nil, nil, err
	}
	defer ft.Close()
	fmt.Printf("   feeder loaded its table in %s\n", ft.FeederLoad.Round(100*time.Millisecond))
	dir, err := os.MkdirTemp("", "mhlab-fulltable-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	starts := []func() (*lab.FullTableReceiver, error){
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableDaemon(ctx, o.daemon, dir) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableGoBGP(ctx, self, dir) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableBIRD(ctx) },
		func() (*lab.FullTableReceiver, error) { return ft.StartFullTableFRR(ctx) },
	}
	var results []lab.FullTableResult
	for _, start := range starts {
		r, err := start()
		if err != nil {
			return results, nil, err
		}
		begin := time.Now()
		res, err := ft.MeasureFullTable(ctx, r, 100*time.Millisecond, o.timeout)
		if err != nil || o.verbose {
			fmt.Println(r.Log())
		}
		r.Stop()
		if err != nil {
			return results, nil, fmt.Errorf("%s: %w", r.Name, err)
		}
		fmt.Printf("   %s: %s, every route in the RIB after %s, %.1f CPU s, %d MB peak RSS (%s wall in all)\n", r.Name, converge(res),
			res.InRIB.Round(10*time.Millisecond), res.CPU.Seconds(), res.MaxRSS/1e6, time.Since(begin).Round(time.Second))
		if r.Name == "multihomed" {
			if sum := transferSummary(r.Log()); sum != "" {
				fmt.Printf("   multihomed's initial transfer: %s\n", sum)
			}
		}
		results = append(results, res)
	}
	if !o.failover {
		return results, nil, nil
	}
	fos, err := installFailovers(ctx, ft, o, s, filepath.Join(dir, "install"))
	return results, fos, err
}

// installFailovers is the kernel-install run: ISP-B added, multihomed with
// bgp.install taking the feed into the kernel, then ISP-A's failure timed
// with nexthop_compat_mode 0 (as docs/configuration.md advises) and 1 (the
// kernel's default).
func installFailovers(ctx context.Context, ft *lab.FullTable, o fullTableOpts, s feedSize, dir string) ([]failoverResult, error) {
	step("%s: kernel install: ISP-B added, multihomed with bgp.install (table %d), then ISP-A's failure",
		s, lab.FullTableInstallTable)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := ft.AddBackup(ctx); err != nil {
		return nil, err
	}
	r, err := ft.StartFullTableInstallDaemon(ctx, o.daemon, dir)
	if err != nil {
		return nil, err
	}
	defer r.Stop()
	var out []failoverResult
	fail := func(err error) ([]failoverResult, error) {
		fmt.Println(r.Log())
		if g, gerr := ft.DaemonGoroutines(); gerr == nil {
			name := filepath.Join(os.TempDir(), fmt.Sprintf("mhlab-fulltable-goroutines-%d.txt", time.Now().Unix()))
			if os.WriteFile(name, []byte(g), 0o600) == nil {
				fmt.Printf("   multihomed's goroutines at the failure: %s\n", name)
			}
		}
		return out, fmt.Errorf("kernel install: %w", err)
	}
	res, err := ft.MeasureFullTable(ctx, r, 100*time.Millisecond, o.timeout)
	if err == nil && !res.Finished {
		err = fmt.Errorf("multihomed accepted %d of %d routes", res.Accepted, ft.IPv6+ft.IPv4)
	}
	if err != nil {
		return fail(err)
	}
	wait, err := ft.WaitInstalled(ctx, o.timeout)
	if err != nil {
		return fail(err)
	}
	installed := res.Converge + wait
	fmt.Printf("   multihomed: %s accepted and installed in the kernel %s after its session came up (%s, %.1f CPU s, %d MB peak RSS so far)\n",
		count(ft.IPv6+ft.IPv4), installed.Round(100*time.Millisecond), converge(res), res.CPU.Seconds(), res.MaxRSS/1e6)
	for _, compat := range []int{0, 1} {
		f, err := ft.MeasureInstallFailover(ctx, compat, 30*time.Second)
		if err != nil {
			return fail(err)
		}
		if f.ViaISPA != 0 {
			return fail(fmt.Errorf("after the move %d of %d routes still lead through ISP-A", f.ViaISPA, f.Routes))
		}
		at, ok := decisionAfter(r.Log(), "feed", f.Failed)
		if !ok {
			return fail(fmt.Errorf("no decision that ISP-A (uplink feed) is down in the log after %s", f.Failed.Format(time.RFC3339Nano)))
		}
		decided := at.Sub(f.Failed)
		fmt.Printf("   nexthop_compat_mode %d: ISP-A down decided after %s; egress default off ISP-A after %s, every kernel route off it after %s (%s after the decision; %s routes through nexthop groups %v); back %s after healing\n",
			compat, ms(decided), ms(f.Egress), ms(f.Moved), ms(f.Moved-decided), count(f.Routes), f.Groups, ms(f.Restored))
		out = append(out, failoverResult{InstallFailover: f, installed: installed, decided: decided})
	}
	gl, err := ft.MeasureGroupLoss(ctx, r.Pid, 3*time.Minute)
	if err != nil {
		return fail(err)
	}
	noticed := "not logged"
	if at, ok := logLineAfter(r.Log(), "fib: the kernel removed bgp.install nexthop groups", gl.Deleted); ok {
		noticed = ms(at.Sub(gl.Deleted))
	}
	fmt.Printf("   ISP-A's groups deleted by hand (the BGP session up): the daemon noticed after %s (its next read-back), every route back through ISP-A after %s; peak RSS %d MB before, %d MB after\n",
		noticed, gl.Restored.Round(100*time.Millisecond), gl.RSSBefore/1e6, gl.RSSAfter/1e6)
	if o.verbose {
		fmt.Println(r.Log())
	}
	return out, nil
}

// decisionAfter finds in the daemon's log the first decision that uplink
// is down logged at or after since (the log's times have milliseconds),
// and returns its time.
func decisionAfter(log, uplink string, since time.Time) (time.Time, bool) {
	return logLineAfter(log, `msg="uplink decision" uplink=`+uplink+" ", since, " to=down ")
}

// logLineAfter finds in the daemon's log the first line that holds part
// and each of more and was logged at or after since; it returns its time.
func logLineAfter(log, part string, since time.Time, more ...string) (time.Time, bool) {
	since = since.Truncate(time.Millisecond)
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, part) || slices.ContainsFunc(more, func(m string) bool { return !strings.Contains(line, m) }) {
			continue
		}
		v, ok := strings.CutPrefix(strings.Fields(line)[0], "time=")
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err == nil && !t.Before(since) {
			return t, true
		}
	}
	return time.Time{}, false
}

// runFullTable checks the arguments of `mhlab bench fulltable` and runs it.
func runFullTable(ctx context.Context, o fullTableOpts, tables string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces); run it with sudo")
	}
	sizes, err := parseFeedSizes(tables)
	if err != nil {
		return err
	}
	if o.paths < 0 {
		return fmt.Errorf("--paths: %d is negative; give 0 for a distinct path per prefix, or the number of distinct paths", o.paths)
	}
	if o.daemon, err = filepath.Abs(o.daemon); err != nil {
		return err
	}
	return benchFullTable(ctx, o, sizes)
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

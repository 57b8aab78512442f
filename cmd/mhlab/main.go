package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

func main() {
	fs := flag.NewFlagSet("mhlab", flag.ExitOnError)
	daemon := fs.String("daemon", "./bin/multihomed", "path of the multihomed binary")
	verbose := fs.Bool("v", false, "echo the daemon's log")
	reps := fs.Int("reps", 5, "bench: runs of each scenario per profile")
	profiles := fs.String("profiles", "fast,default", "bench: probe profiles to measure")
	birdInbound := fs.Bool("bird-inbound", false, "bench: run ISP-A and the transit on BIRD instead of FRR (no FRR router on the inbound path)")
	restart := fs.Bool("restart", false, "bench: measure planned restarts and crashes beside link cuts, in the FRR and the BIRD-inbound lab")
	duration := fs.Duration("duration", 15*time.Minute, "soak, storm: how long to inject faults (storm: each kind)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "soak: seed of the random fault sequence")
	backend := fs.String("backend", "kernel", "pa: NPTv6 backend, kernel or ebpf")
	promAddr := fs.String("prometheus", "127.0.0.1:9090", "up: host address for the lab's Prometheus (\"\" runs none)")
	promRules := fs.String("prometheus-rules", "docs/prometheus/rules.yml", "up: alert and recording rules Prometheus loads")
	edges := fs.String("edge", "", "bench: compare edges (multihomed,exabgp,frr) on link cut, gray failure, loss and planned restart")
	exabgp := fs.String("exabgp", "default,tuned", "bench --edge exabgp: healthcheck variants")
	scenarios := fs.String("scenarios", "", "bench --edge: only these scenarios (comma-separated names), default all")
	imgDir := fs.String("img", "", "bench --edge: write timeline plots (SVG, PNG) into this directory")
	jsonOut := fs.String("json", "", "bench --edge: write every result (timelines included) to this file")
	replot := fs.String("replot", "", "bench: only redraw the plots (--img) and table from this --json file")
	targetDelay := fs.Duration("target-delay", 0, "bench, bench --edge: put the internet host (the probe target) this much further away, a delay line on what it sends (e.g. 40ms)")
	cpuWindow := fs.Duration("window", 30*time.Second, "bench cpu: measuring window")
	tables := fs.String("tables", "50k/0", "bench fulltable: tables to feed, IPV6/IPV4 prefix counts, comma-separated (50k/0,200k/1M)")
	ftTimeout := fs.Duration("timeout", 10*time.Minute, "bench fulltable: give up on a receiver after this long")
	ftPaths := fs.Int("paths", 0, "bench fulltable: distinct AS paths in the feed (0: one per prefix)")
	ftFailover := fs.Bool("failover", true, "bench fulltable: then run multihomed with bgp.install and a second ISP, and time ISP-A's failure in the kernel")
	cpuBursts := fs.Bool("bursts", false, "bench cpu: also run a 20 Hz daemon with no_bursts: true (bursts on vs off, everything else equal)")
	cpuLoss := fs.Int("loss", 0, "bench cpu: percent of forwarded packets every router drops during the window, so that bursts run (0-100)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mhlab demo|up|pa|two-edge|two-edge-up|bench|pa-bench [--daemon PATH] [-v] [--reps N] [--profiles fast,default] [--bird-inbound] [--target-delay D] [--prometheus ADDR] [--backend kernel|ebpf] [--restart]\n"+
			"       mhlab bench --edge multihomed,exabgp,frr [--exabgp default,tuned] [--scenarios ...] [--reps N] [--target-delay D] [--img DIR] [--json FILE]\n"+
			"       mhlab bench cpu [--daemon PATH] [--window 30s] [--bursts] [--loss PERCENT]\n"+
			"       mhlab bench fulltable [--daemon PATH] [--tables 50k/0,200k/1M] [--paths N] [--timeout 10m] [--failover=false]\n"+
			"       mhlab soak|storm [--daemon PATH] [--duration D] [--seed N]\n"+
			"       mhlab bare-gobgp --asn N --router-id ID --listen ADDRS --neighbor ASN@ADDR... --status FILE (run by bench fulltable)")
		fs.PrintDefaults()
	}
	if len(os.Args) < 2 {
		fs.Usage()
		os.Exit(2)
	}
	cmd := os.Args[1]
	args := os.Args[2:]
	if cmd == "bare-gobgp" { // run by bench fulltable, with flags of its own
		if err := runBareGoBGP(args); err != nil { // baregobgp.go
			fmt.Fprintln(os.Stderr, "mhlab:", err)
			os.Exit(1)
		}
		return
	}
	if cmd == "bench" && len(args) > 0 && (args[0] == "cpu" || args[0] == "fulltable") {
		cmd, args = "bench "+args[0], args[1:]
	}
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "demo":
		err = run(ctx, *daemon, *verbose, true, "", "")
	case "up":
		err = run(ctx, *daemon, *verbose, false, *promAddr, *promRules)
	case "pa":
		err = runPA(ctx, *daemon, *backend, *verbose)
	case "pa-bench":
		var abs string
		if abs, err = filepath.Abs(*daemon); err == nil {
			err = benchPA(ctx, abs, *backend, strings.Split(*profiles, ","), *reps, *verbose)
		}
	case "two-edge", "two-edge-up":
		err = twoEdge(ctx, *daemon, *verbose, cmd == "two-edge") // twoedge.go
	case "bench":
		if os.Geteuid() != 0 {
			err = fmt.Errorf("needs root (network namespaces); run it with sudo")
			break
		}
		if *replot != "" {
			err = replotJSON(*replot, *imgDir)
			break
		}
		if *targetDelay < 0 {
			err = fmt.Errorf("--target-delay: %v is negative; use for example 40ms, or 0 for no delay", *targetDelay)
			break
		}
		var abs string
		if abs, err = filepath.Abs(*daemon); err != nil {
			break
		}
		if *restart {
			err = benchRestart(ctx, abs, *reps, *verbose)
			break
		}
		if *edges == "" {
			err = bench(ctx, abs, strings.Split(*profiles, ","), *reps, *verbose, *birdInbound, *targetDelay)
			break
		}
		err = runCompare(ctx, compareOpts{daemon: abs, edges: splitList(*edges), profiles: splitList(*profiles),
			exabgp: splitList(*exabgp), scenarios: splitList(*scenarios), reps: *reps, imgDir: *imgDir, jsonPath: *jsonOut, verbose: *verbose,
			targetDelay: *targetDelay})
	case "bench cpu":
		if os.Geteuid() != 0 {
			err = fmt.Errorf("needs root (network namespaces); run it with sudo")
			break
		}
		if *cpuLoss < 0 || *cpuLoss > 100 {
			err = fmt.Errorf("--loss: %d is not a percentage; use 0-100", *cpuLoss)
			break
		}
		var abs string
		if abs, err = filepath.Abs(*daemon); err == nil {
			err = benchCPU(ctx, abs, *cpuWindow, *cpuBursts, *cpuLoss, *verbose)
		}
	case "bench fulltable":
		err = runFullTable(ctx, fullTableOpts{daemon: *daemon, paths: *ftPaths, timeout: *ftTimeout, verbose: *verbose, failover: *ftFailover}, *tables) // fulltable.go
	case "storm":
		var abs string
		if abs, err = filepath.Abs(*daemon); err == nil {
			err = storm(ctx, abs, *duration, *verbose)
		}
	case "soak":
		var abs string
		if abs, err = filepath.Abs(*daemon); err == nil {
			err = soak(ctx, abs, *duration, *seed, *verbose)
		}
	default:
		fs.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mhlab:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runCompare runs the edge comparison, prints the table, and writes the
// JSON and the plots when asked.
func runCompare(ctx context.Context, o compareOpts) error {
	results, err := compare(ctx, o)
	if len(results) > 0 {
		step("Loss windows of a 500 pps flow (internet host <-> LAN host); \"never\": not restored while the fault lasted")
		if serr := summary(os.Stdout, results); serr != nil && err == nil {
			err = serr
		}
		if o.jsonPath != "" {
			if jerr := writeJSON(o.jsonPath, results); jerr != nil && err == nil {
				err = jerr
			}
		}
		if o.imgDir != "" {
			files, perr := plotTimelines(o.imgDir, results)
			fmt.Println("   plots:", strings.Join(files, " "))
			if perr != nil && err == nil {
				err = perr
			}
		}
	}
	return err
}

// replotJSON redraws the table and the plots from a --json file.
func replotJSON(path, imgDir string) error {
	results, err := readJSON(path)
	if err != nil {
		return err
	}
	if err := summary(os.Stdout, results); err != nil {
		return err
	}
	if imgDir == "" {
		return nil
	}
	files, err := plotTimelines(imgDir, results)
	fmt.Println("   plots:", strings.Join(files, " "))
	return err
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

// run brings the lab up with the daemon; with demo it cuts and restores
// ISP-A, else it waits for Ctrl-C, with Prometheus on promAddr unless that
// is "".
func run(ctx context.Context, daemonPath string, verbose, demo bool, promAddr, promRules string) error {
	abs, err := rootDaemon(daemonPath)
	if err != nil {
		return err
	}
	l, down, err := upLab("Building the lab: edge (multihomed AS64500), isp-a (FRR AS64501), isp-b (BIRD AS64502), transit (FRR AS64510)",
		func() (*lab.Lab, error) { return lab.Up(ctx, lab.Options{ID: netns.UniqueID()}) })
	if err != nil {
		return err
	}
	defer down()
	fmt.Println("   namespaces:", l.Describe())
	cfgDir, err := os.MkdirTemp("", "mhlab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cfgDir)
	// The demo's state (overrides, egress state) goes with its config.
	cfgText := lab.EdgeConfig(map[string]string{"isp-b": "      prepend: 1"}) +
		fmt.Sprintf("controller:\n  state_dir: %s\n", filepath.Join(cfgDir, "state"))
	step("Starting multihomed in %s with this config:", l.Edge.Name)
	fmt.Print(indent(cfgText))
	d, err := startDaemon(ctx, l.Edge, abs, filepath.Join(cfgDir, "multihomed.yaml"), cfgText, echoTo(verbose))
	if err != nil {
		return err
	}
	defer stopDaemon(d)

	step("Waiting for the BGP sessions and for the transit to hear the site via both ISPs")
	if err := waitTransit(ctx, l, d, 2, 60*time.Second); err != nil {
		return err
	}
	show(ctx, l)
	if !demo {
		if promAddr != "" {
			step("Starting Prometheus in %s", l.Edge.Name)
			stopProm, err := startPrometheus(ctx, l, promAddr, promRules)
			if err != nil {
				return err
			}
			defer stopProm()
		}
		step("Lab is up. Try: ip netns exec %s ip -6 route; vtysh -N %s -c 'show bgp ipv6 unicast'. Ctrl-C to stop.", l.Edge.Name, l.Transit.Name)
		<-ctx.Done()
		return nil
	}

	step("Cutting ISP-A's link (ip link set eth-a down in the edge)")
	cut := time.Now()
	if _, err := l.Edge.Run(ctx, "ip", "link", "set", "eth-a", "down"); err != nil {
		return err
	}
	if err := waitTransit(ctx, l, d, 1, 60*time.Second); err != nil {
		return err
	}
	fmt.Printf("   transit lost the path via ISP-A %s after the cut\n", time.Since(cut).Round(time.Millisecond))
	show(ctx, l)

	step("Restoring ISP-A's link")
	restore := time.Now()
	if _, err := l.Edge.Run(ctx, "ip", "link", "set", "eth-a", "up"); err != nil {
		return err
	}
	if err := waitTransit(ctx, l, d, 2, 90*time.Second); err != nil {
		return err
	}
	fmt.Printf("   transit heard the site via ISP-A again %s after the restore\n", time.Since(restore).Round(time.Millisecond))
	show(ctx, l)
	step("Demo complete")
	return nil
}

// waitTransit waits until the transit holds the site /48 via exactly n
// paths.
func waitTransit(ctx context.Context, l *lab.Lab, d *lab.Daemon, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		paths, err := l.TransitRouter.Paths(ctx, lab.SitePrefix6)
		if err == nil && len(paths) == n {
			return nil
		}
		select {
		case <-d.Done():
			return fmt.Errorf("multihomed exited; its log:\n%s", d.Log())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("transit holds %d paths for %s after %s, want %d; daemon log:\n%s", len(paths), lab.SitePrefix6, timeout, n, d.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// show prints what each router holds for the site prefixes and its
// sessions with the edge.
func show(ctx context.Context, l *lab.Lab) {
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "   router\tprefix\tAS path\tcommunities\tbest")
	for _, name := range []string{"isp-a", "isp-b", "transit"} {
		r := l.Routers()[name]
		for _, p := range []netip.Prefix{lab.SitePrefix6, lab.SitePrefix4} {
			paths, err := r.Paths(ctx, p)
			if err != nil {
				fmt.Fprintf(tw, "   %s\t%s\terror: %v\t\t\n", name, p, err)
				continue
			}
			if len(paths) == 0 {
				fmt.Fprintf(tw, "   %s\t%s\t(none)\t\t\n", name, p)
			}
			slices.SortFunc(paths, func(a, b lab.Path) int { return len(a.ASPath) - len(b.ASPath) })
			for _, path := range paths {
				fmt.Fprintf(tw, "   %s\t%s\t%v\t%s\t%v\n", name, p, path.ASPath, strings.Join(path.Communities, " "), path.Best)
			}
		}
	}
	tw.Flush()
	for _, s := range []struct {
		name string
		r    lab.Router
		n    netip.Addr
	}{{"isp-a", l.ISPARouter, lab.EdgeAAddr6}, {"isp-b", l.ISPBRouter, lab.EdgeBAddr6}} {
		st, err := s.r.Session(ctx, s.n)
		if err != nil {
			fmt.Printf("   %s session with the edge: %v\n", s.name, err)
			continue
		}
		fmt.Printf("   %s session with the edge (%s): %s\n", s.name, s.n, st.State)
	}
}

func indent(s string) string {
	return "   " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n   ") + "\n"
}

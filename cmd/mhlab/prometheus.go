package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
)

// startPrometheus runs Prometheus in the lab's edge namespace, scraping
// the daemon with the shipped rules (rulesPath, as they are: `for:` as
// shipped), and forwards hostAddr on the host to it. It prints the URL. A
// missing prometheus binary or rule file is reported and skipped: the lab
// runs without them. The returned function stops Prometheus.
func startPrometheus(ctx context.Context, l *lab.Lab, hostAddr, rulesPath string) (func(), error) {
	if _, err := exec.LookPath("prometheus"); err != nil {
		fmt.Println("   prometheus is not installed (Debian package prometheus): running without it")
		return func() {}, nil
	}
	var rules [][]byte
	if b, err := os.ReadFile(rulesPath); err != nil {
		fmt.Printf("   %v: Prometheus runs without the alert rules\n", err)
	} else {
		rules = append(rules, b)
	}
	dir, err := os.MkdirTemp("", "mhlab-prometheus-")
	if err != nil {
		return nil, err
	}
	p, err := lab.StartPrometheus(ctx, l.Edge, lab.PrometheusOptions{Dir: dir, Rules: rules})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := func() {
		p.Close()
		os.RemoveAll(dir)
	}
	if err := p.WaitReady(ctx, time.Minute); err != nil {
		stop()
		return nil, err
	}
	addr, err := p.Forward(ctx, hostAddr)
	if err != nil {
		stop()
		return nil, err
	}
	fmt.Printf("   Prometheus: http://%s/ (scrapes the edge's %s every second; alerts at /alerts)\n", addr, lab.EdgeMetricsAddr)
	return stop, nil
}

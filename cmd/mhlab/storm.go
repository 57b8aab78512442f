package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// storm runs the flap storms of lab.FlapStorm for duration each (ISP-A's
// sessions reset, then its link flapped, 10 times a second) in a lab with
// FRR as both ISPs, and prints what each did to the daemon and to ISP-B.
func storm(ctx context.Context, daemonPath string, duration time.Duration, verbose bool) error {
	for _, kind := range []string{lab.StormSessions, lab.StormLink} {
		step("Flap storm (%s, 10 a second for %s): building the lab (FRR ISP-A, ISP-B and transit)", kind, duration)
		if err := stormOnce(ctx, daemonPath, kind, duration, verbose); err != nil {
			return err
		}
	}
	return nil
}

func stormOnce(ctx context.Context, daemonPath, kind string, duration time.Duration, verbose bool) error {
	l, err := lab.Up(ctx, lab.Options{ID: netns.UniqueID(), ISPBFRR: true})
	if err != nil {
		return err
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "mhlab-storm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "api.sock")
	cfg := lab.ScenarioConfig(lab.ProfileFast, filepath.Join(dir, "state"), false, false) + fmt.Sprintf("api:\n  socket: %s\n", sock) + lab.StormConfig
	d, err := startDaemon(ctx, l.Edge, daemonPath, filepath.Join(dir, "multihomed.yaml"), cfg, echoTo(verbose))
	if err != nil {
		return err
	}
	defer d.Stop(10 * time.Second)
	res, err := l.FlapStorm(ctx, d, sock, kind, 10, duration, 10*time.Second, 180*time.Second, 120*time.Second)
	if err != nil {
		return fmt.Errorf("%w; daemon log tail:\n%s", err, tail(d.Log(), 30))
	}
	fmt.Printf("   %d %s in %s; the daemon stayed up\n", res.Actions, kind, res.Took.Round(time.Millisecond))
	fmt.Printf("   ISP-B received %d UPDATEs from the edge from the storm's start until the lab was steady again\n", res.ISPBUpdates)
	fmt.Printf("   isp-a decision events (%d), hold-downs they name: %v\n      %s\n", len(res.Events), res.HoldDowns(), strings.Join(res.Events, "\n      "))
	fmt.Printf("   fresh: %s (before a 10 s warm-up of the same storm)\n", res.Fresh)
	fmt.Printf("   start: %s\n   end:   %s (RSS and goroutines within 10%% of the start: %v)\n", res.Start, res.End, res.Returned)
	return nil
}

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/multihomed/multihomed/internal/lab"
	"github.com/multihomed/multihomed/internal/netns"
)

// decidedDown finds the daemon's log lines deciding isp-a down.
var decidedDown = regexp.MustCompile(`time=(\S+) level=INFO msg="uplink decision" uplink=isp-a from=\S+ to=down`)

// paFigures is one PA failover run.
type paFigures struct {
	// outbound: fault to the first packet of the LAN host's flow arriving
	// from ISP-B's PA prefix. dnsFromFault: fault to the server answering
	// ISP-B's address alone; dnsFromVerdict: the daemon deciding ISP-A down
	// (its log) to that answer.
	outbound, dnsFromFault, dnsFromVerdict time.Duration
}

// benchPA measures PA-mode failover: for each profile, one PA lab and reps
// runs of each scenario (link cut, gray failure) on ISP-A.
func benchPA(ctx context.Context, daemonPath, backend string, profiles []string, reps int, verbose bool) error {
	type key struct{ profile, scenario string }
	results := map[key][]paFigures{}
	var order []key
	for _, profile := range profiles {
		step("Profile %s: building the PA lab (%s backend)", profile, backend)
		err := func() error {
			l, err := lab.UpPA(ctx, netns.UniqueID())
			if err != nil {
				return err
			}
			defer l.Close()
			dir, err := os.MkdirTemp("", "mhlab-pabench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			keyFile, pin, unmount, err := startPADNS(ctx, l, dir, backend)
			if err != nil {
				return err
			}
			defer unmount()
			cfgText := lab.PAEdgeConfig(profile, backend, pin, keyFile, filepath.Join(dir, "state")) + fmt.Sprintf("api:\n  socket: %s\n", filepath.Join(dir, "api.sock"))
			d, err := startDaemon(ctx, l.Edge, daemonPath, filepath.Join(dir, "multihomed.yaml"), cfgText, echoTo(verbose))
			if err != nil {
				return err
			}
			defer d.Stop(10 * time.Second)
			sink, err := lab.StartSourceSink(l.Inet, lab.InetAddr6, 9999)
			if err != nil {
				return err
			}
			defer sink.Close()
			flow, err := lab.StartSender(l.LAN, lab.PALANAddr6, netip.AddrPortFrom(lab.InetAddr6, 9999), "bench", time.Millisecond)
			if err != nil {
				return err
			}
			defer flow.Stop()
			both := 2
			if err := awaitAnswers(ctx, l, both, 120*time.Second); err != nil {
				return fmt.Errorf("steady state: %w; daemon log:\n%s", err, d.Log())
			}
			for _, sc := range []struct {
				name        string
				fault, heal func(context.Context) error
			}{{"link cut", l.CutISPA, l.RestoreISPA}, {"gray failure", l.GrayFailISPA, l.HealISPA}} {
				k := key{profile, sc.name}
				order = append(order, k)
				for i := range reps {
					t0 := time.Now()
					if err := sc.fault(ctx); err != nil {
						return err
					}
					if err := awaitAnswers(ctx, l, 1, 60*time.Second); err != nil {
						return fmt.Errorf("%s run %d: %w", sc.name, i+1, err)
					}
					dnsAt := time.Now()
					var f paFigures
					f.dnsFromFault = dnsAt.Sub(t0)
					if at, ok := sink.FirstFrom("bench", lab.PAPrefixB, t0); ok {
						f.outbound = at.Sub(t0)
					}
					if m := decidedDown.FindAllStringSubmatch(d.Log(), -1); len(m) > 0 {
						if v, err := time.Parse(time.RFC3339Nano, m[len(m)-1][1]); err == nil && !v.Before(t0) {
							f.dnsFromVerdict = dnsAt.Sub(v)
						}
					}
					results[k] = append(results[k], f)
					fmt.Printf("   %s run %d: outbound via ISP-B after %s; DNS ISP-B only %s after the fault, %s after the verdict\n", sc.name, i+1, f.outbound.Round(time.Millisecond), f.dnsFromFault.Round(time.Millisecond), f.dnsFromVerdict.Round(time.Millisecond))
					if err := sc.heal(ctx); err != nil {
						return err
					}
					if err := awaitAnswers(ctx, l, both, 120*time.Second); err != nil {
						return fmt.Errorf("%s run %d recovery: %w", sc.name, i+1, err)
					}
				}
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	step("Results (%d runs each; DNS times are to the primary's answer, at most 100 ms late: it is polled)", reps)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "profile\tscenario\toutbound median\toutbound worst\tDNS from fault median\tworst\tDNS from verdict median\tworst")
	for _, k := range order {
		fs := results[k]
		col := func(get func(paFigures) time.Duration) (time.Duration, time.Duration) {
			var v []time.Duration
			for _, f := range fs {
				v = append(v, get(f))
			}
			slices.Sort(v)
			return v[len(v)/2], v[len(v)-1]
		}
		om, ow := col(func(f paFigures) time.Duration { return f.outbound })
		dm, dw := col(func(f paFigures) time.Duration { return f.dnsFromFault })
		vm, vw := col(func(f paFigures) time.Duration { return f.dnsFromVerdict })
		r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.profile, k.scenario, r(om), r(ow), r(dm), r(dw), r(vm), r(vw))
	}
	return tw.Flush()
}

// awaitAnswers polls the primary (every 100 ms) until it answers n AAAA
// records for the published name.
func awaitAnswers(ctx context.Context, l *lab.PALab, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		addrs, err := l.Resolve(ctx)
		if err == nil && len(addrs) == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server answers %v (%v), want %d addresses", addrs, err, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

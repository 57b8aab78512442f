package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/multihomed/multihomed/api"
	"github.com/multihomed/multihomed/bgp"
	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/fib"
	"github.com/multihomed/multihomed/health"
	"github.com/multihomed/multihomed/internal/manpage"
	"github.com/multihomed/multihomed/privilege"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		var ce *config.Error
		if !errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, "multihomed:", err)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "multihomed",
		Short:         "Keep a site reachable over several ISPs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newConfigCmd(), newStopCmd(), newVersionCmd(), manpage.Command(root, "8")) // section 8: root or systemd runs the daemon
	return root
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file and list every problem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0], nil)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (mode %s, %d uplinks, %d site prefixes, profile %s)\n", args[0], cfg.Site.Mode, len(cfg.Uplinks), len(cfg.Site.Prefixes), cfg.Profile)
			for _, p := range config.Advice(cfg) {
				fmt.Fprintf(cmd.OutOrStdout(), "advice: %s\n", p)
			}
			return nil
		},
	})
	return cmd
}

func newRunCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, cmd.Flags())
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return err
			}
			// Before anything touches the kernel: a missing capability is
			// named with its reasons, not met later as a bare EPERM.
			if err := privilege.CheckProcess(privilege.UsesOf(cfg)); err != nil {
				return err
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return run(ctx, log, path, cfg, cmd)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/multihomed/multihomed.yaml", "configuration file")
	config.AddFlags(cmd.Flags())
	return cmd
}

func newLogger(l config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if l.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(h)
}

// run owns the daemon's lifetime: it starts the speaker, probes, the
// controller and the link watcher from one errgroup, reloads on SIGHUP and
// stops on ctx.
func run(ctx context.Context, log *slog.Logger, path string, cfg *config.Config, cmd *cobra.Command) error {
	// The sessions open with the first decision's announcements, so that
	// End-of-RIB follows the site's prefixes; the controller decides at the
	// latest when its startup wait ends, the speaker waits that long and a
	// margin.
	spOpts := bgp.Options{Logger: log, FirstAnnounceWait: cfg.Controller.StartupWait + 5*time.Second}
	installer, err := newInstaller(cfg, log)
	if err != nil {
		return err
	}
	if installer != nil {
		defer installer.Close()
		spOpts.OnBest = installer.fromSpeaker
		spOpts.OnBestSnapshot = installer.snapshotFromSpeaker
	}
	gc := &gcPacing{log: log}
	gc.apply(cfg)
	defer gc.stop()
	sp := bgp.New(spOpts)
	if err := sp.Start(ctx, cfg.SpeakerView()); err != nil {
		return err
	}
	if installer != nil {
		installer.replayOnLoss(sp, log)
	}
	defer func() {
		// A fresh context: ctx is already cancelled when we get here.
		sp.Stop(context.Background())
		log.Info("stopped")
	}()

	egress, err := fib.NewEgress("", cfg.Egress.Table, cfg.Egress.Protocol)
	if err != nil {
		return err
	}
	defer egress.Close()

	// Probes: per-uplink tables and rules pin them to their uplink.
	probed := probedUplinks(cfg)
	probeTables, err := fib.NewProbeTables("", 0)
	if err != nil {
		return err
	}
	defer probeTables.Close()
	if _, err := probeTables.Set(ctx, controller.ProbeTablesFor(cfg)); err != nil {
		return fmt.Errorf("probe tables: %w", err)
	}
	// The metrics read the loop, which needs the monitor: the hook is set
	// before anything probes (monitor.Run starts below).
	var metrics *api.Metrics
	onProbe := func(uplink, target string, rtt time.Duration, err error) {
		metrics.ObserveProbe(uplink, target, rtt, err)
	}
	// Always a monitor, idle when nothing is probed, so that a reload can
	// add health blocks.
	monitor, err := health.NewMonitor(health.Options{Uplinks: probed, Logger: log, OnProbe: onProbe})
	if err != nil {
		return err
	}

	pa, err := newPA(cfg, log)
	if err != nil {
		return err
	}
	defer pa.close()
	var egressApplier controller.Egress = egress
	if installer != nil {
		egressApplier = installingEgress{Egress: egress, in: installer}
	}
	deps := controller.Deps{Speaker: speakerView{sp}, Site: sp, Egress: egressApplier, ProbeTables: probeTables, Health: monitor, Logger: log}
	pa.wire(&deps)
	loop := controller.New(cfg, deps)
	metrics = api.NewMetrics(loop)
	metrics.ReadHealthFrom(monitor)
	store := &configStore{cfg: cfg, probed: probed, path: path, flags: cmd, loop: loop, monitor: monitor, log: log, gc: gc}
	svc := api.NewServer(api.Options{Controller: loop, Config: store, Health: monitor, Translation: pa.reader(), Logger: log, WatchBuffer: cfg.API.WatchBuffer, MaxStreamsPerPrincipal: cfg.API.MaxStreamsPerPrincipal,
		// Shutdown{withdraw} returns once the loop has decommissioned; the
		// daemon then ends through loop.Decommissioned (below), whoever asked.
		Exit: func() {}})

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	// SIGUSR2 (multihomed stop --withdraw): decommission, then exit 0.
	// SIGTERM and SIGINT stop without withdrawing: nothing here announces
	// nothing before the speaker stops (with graceful restart), so the
	// ISPs keep the site's routes while the daemon restarts.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(usr2)
	removePid, err := writePidFile(cfg.Controller.StateDir)
	if err != nil {
		return fmt.Errorf("controller.state_dir %s: %w; make it writable by the daemon or set another", cfg.Controller.StateDir, err)
	}
	defer removePid()

	for _, w := range advisories(cfg) {
		log.Warn(w)
	}
	log.Info("started", "mode", cfg.Site.Mode, "uplinks", len(cfg.Uplinks), "prefixes", fmt.Sprint(cfg.Site.Prefixes), "asn", cfg.Node.ASN, "probed", len(probed))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return loop.Run(ctx) })
	if installer != nil {
		g.Go(func() error { return installer.Run(ctx) })
	}
	sd := newSystemd(log)
	g.Go(func() error { return sd.run(ctx, loop) })
	pa.start(ctx, g)
	g.Go(func() error {
		// Run returns the context's cause when the daemon stops: that is
		// a clean stop, not an error (exit status 0 on SIGTERM).
		if err := monitor.Run(ctx); ctx.Err() == nil {
			return err
		}
		return nil
	})
	// The NOC API and metrics: a listener that cannot be set up stops the
	// daemon (a site that cannot be drained is a misconfigured site).
	if cfg.API.Socket != "" || cfg.API.TCP != nil {
		g.Go(func() error { return api.Serve(ctx, svc, cfg.API, log) })
	}
	g.Go(func() error { return metrics.Run(ctx) })
	if cfg.Metrics.Address.IsValid() {
		g.Go(func() error { return api.ServeMetrics(ctx, cfg.Metrics.Address.String(), metrics, log) })
	}
	if cfg.Debug.PprofListen.IsValid() {
		log.Warn("debug.pprof_listen is set: profiling endpoints are open on loopback", "address", cfg.Debug.PprofListen.String())
		g.Go(func() error { return api.ServePprof(ctx, cfg.Debug.PprofListen.String(), log) })
	}
	g.Go(func() error {
		// Carrier is an input, not a reason to stop routing: restart the
		// watcher if its netlink socket fails. Carrier is the controller's
		// (Decide) alone; health only probes.
		for {
			err := fib.LinkWatcher{}.WatchCarrier(ctx, loop.SetCarrier)
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("link watcher failed; restarting it", "error", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	})
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return nil
		case <-usr2:
			log.Warn("SIGUSR2: decommissioning, then exiting")
			if err := loop.Decommission(ctx, "SIGUSR2"); err != nil && ctx.Err() == nil {
				return fmt.Errorf("decommission: %w", err)
			}
			return nil
		}
	})
	g.Go(func() error {
		// A decommission (signal or API) ends the daemon.
		select {
		case <-ctx.Done():
			return nil
		case <-loop.Decommissioned():
			return errDecommissioned
		}
	})
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				sd.reloading()
				if _, err := store.Reload(ctx); err != nil {
					logReloadError(log, err)
				}
				sd.reloaded()
			case <-usr1:
				dumpState(log, sp, loop)
			}
		}
	})
	if err := g.Wait(); !errors.Is(err, errDecommissioned) {
		return err
	}
	log.Info("decommissioned; exiting")
	return nil
}

// errDecommissioned ends the errgroup once the site was decommissioned; run
// turns it into a clean exit.
var errDecommissioned = errors.New("decommissioned")

// configStore holds the configuration in force and reloads it, for SIGHUP
// and the API alike (api.ConfigStore). Reloads are serialized.
type configStore struct {
	path    string
	flags   *cobra.Command
	loop    *controller.Loop
	monitor *health.Monitor
	log     *slog.Logger
	gc      *gcPacing

	mu sync.Mutex
	// cfg is the configuration in force, guarded by mu.
	cfg *config.Config
	// probed is what the health monitor runs, guarded by mu. It changes
	// only when a reconfiguration was committed, so a reload that could
	// not start new probes is retried by the next one.
	probed []health.Uplink
}

// Current implements api.ConfigStore.
func (s *configStore) Current() (*config.Config, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg, s.path
}

// Validate implements api.ConfigStore.
func (s *configStore) Validate(text []byte) ([]config.Problem, error) {
	// The structure only: a request never makes the daemon open a file
	// (config.CheckRequest notes each file reference it did not read).
	return config.CheckRequest("request", text)
}

// Reload implements api.ConfigStore: the file at path is read and
// validated, changed health probes are prepared (their probers built); if
// everything is accepted the loop applies the configuration and the new
// probes start, else the running configuration stays whole.
func (s *configStore) Reload(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := config.Load(s.path, s.flags.Flags())
	if err != nil {
		return nil, err
	}
	// What the controller would refuse is refused before anything changes.
	reloadWarnings, err := controller.CheckReload(s.cfg, cfg)
	if err != nil {
		return nil, err
	}
	warnings := append(advisories(cfg), reloadWarnings...)
	next := probedUplinks(cfg)
	var probes *health.Reconfiguration
	if !reflect.DeepEqual(s.probed, next) {
		if probes, err = s.monitor.Prepare(next); err != nil {
			return nil, fmt.Errorf("reload refused: health probes: %w", err)
		}
	}
	applied, err := s.loop.Reload(ctx, cfg)
	if err != nil {
		if probes != nil {
			probes.Discard()
		}
		return nil, fmt.Errorf("reload refused by the controller (restart to apply node or listen_port changes): %w", err)
	}
	warnings = append(warnings, applied...)
	if probes != nil {
		// Not cancellable: the controller already runs the new
		// configuration, whose probe tables the new probes need. Run takes
		// it at once unless it is stopping.
		if err := probes.Commit(context.WithoutCancel(ctx)); err != nil {
			warnings = append(warnings, "health probes unchanged (the next reload retries): "+err.Error())
		} else {
			s.probed = next
			s.log.Info("health probes reconfigured", "kept", strings.Join(probes.Kept(), ","))
		}
	}
	for _, w := range warnings {
		s.log.Warn("reload: " + w)
	}
	s.cfg = cfg
	s.gc.apply(cfg)
	s.log.Info("config reloaded", "file", s.path)
	return warnings, nil
}

// logReloadError logs a rejected reload, one line a problem.
func logReloadError(log *slog.Logger, err error) {
	var ce *config.Error
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			log.Error("reload rejected: config problem; the running config stays", "path", p.Path, "problem", p.Message)
		}
		return
	}
	log.Error("reload rejected; the running config stays", "error", err)
}

// advisories are the warnings a configuration earns at start and at every
// reload: its advice, and an egress table nothing routes to.
func advisories(cfg *config.Config) []string {
	var out []string
	for _, p := range config.Advice(cfg) {
		out = append(out, "config advice: "+p.String())
	}
	if w := unusedEgressTable(cfg); w != "" {
		out = append(out, w)
	}
	if w := nexthopCompatAdvice(cfg, fib.NexthopCompatMode); w != "" {
		out = append(out, w)
	}
	return out
}

// nexthopCompatAdvice says, when bgp.install is on, that the kernel's
// nexthop compatibility mode is on too: every failover then also sends a
// notification per route, which makes moving a full table about 30 times
// slower. The daemon does not change the sysctl (it is the host's).
func nexthopCompatAdvice(cfg *config.Config, mode func() (on, known bool, err error)) string {
	if cfg.BGP.Install.Table == 0 {
		return ""
	}
	on, known, err := mode()
	switch {
	case err != nil:
		return "bgp.install: cannot read net.ipv4.nexthop_compat_mode: " + err.Error()
	case known && on:
		return "bgp.install: net.ipv4.nexthop_compat_mode is 1 (the kernel default): moving the installed routes off a failed uplink also sends one notification per route " +
			"(0.86 s instead of 29 ms for 1.2M routes); set sysctl net.ipv4.nexthop_compat_mode=0 unless another program needs those notifications"
	}
	return ""
}

// unusedEgressTable says when no policy routing rule looks up
// egress.table for some family: the site's defaults there carry no
// traffic (the daemon adds no rule; the operator's rules decide).
func unusedEgressTable(cfg *config.Config) string {
	fams, err := fib.UnruledFamilies("", cfg.Egress.Table)
	if err != nil || len(fams) == 0 {
		return ""
	}
	return fmt.Sprintf("egress.table %d: no ip rule looks it up for %s, so the egress defaults there carry no traffic; add a rule (ip rule add ... lookup %d) or use table 254 (main)",
		cfg.Egress.Table, strings.Join(fams, " and "), cfg.Egress.Table)
}

// probedUplinks lists the uplinks of cfg that have a health block, as the
// monitor takes them.
func probedUplinks(cfg *config.Config) []health.Uplink {
	var out []health.Uplink
	for _, u := range cfg.Uplinks {
		if u.Health != nil {
			out = append(out, health.Uplink{Name: u.Name, Device: u.Interface, Health: *u.Health})
		}
	}
	return out
}

// dumpState logs, on SIGUSR1, every uplink's decision, every session's
// state and prefix counts, what each uplink announces and a bounded sample
// of what it has had accepted: a quick look without the API. A full table
// is a million prefixes; the sample keeps the log line readable.
func dumpState(log *slog.Logger, sp *bgp.Speaker, loop *controller.Loop) {
	st := loop.Status()
	for _, d := range st.Desired.Uplinks {
		log.Info("state: uplink", "uplink", d.Uplink, "state", d.State, "reason", d.Reason, "egress", d.Egress, "egress_tier", d.EgressTier, "metric", d.Metric)
	}
	for _, r := range st.Egress {
		log.Info("state: egress route", "route", r.String())
	}
	if st.Desired.FailStatic {
		log.Warn("state: alarm", "alarm", st.Desired.Alarm)
	}
	for _, s := range sp.Sessions() {
		log.Info("state: session", "uplink", s.Uplink, "peer", s.Neighbor, "state", s.State, "since", s.Since.Format(time.RFC3339), "last_error", s.LastError, "received", s.Received, "accepted", s.Accepted)
	}
	for uplink, anns := range sp.Announced() {
		for _, a := range anns {
			log.Info("state: announced", "uplink", uplink, "prefix", a.Prefix, "prepend", a.Prepend, "communities", fmt.Sprint(a.Communities), "graceful_shutdown", a.GracefulShutdown)
		}
	}
	learned, err := sp.LearnedSample(dumpSample)
	if err != nil {
		log.Error("state: learned routes", "error", err)
		return
	}
	for uplink, ps := range learned {
		log.Info("state: learned sample", "uplink", uplink, "sample", fmt.Sprint(ps), "max", dumpSample)
	}
}

// dumpSample is how many accepted prefixes per uplink the SIGUSR1 dump
// prints; the sessions' counts say how many there are.
const dumpSample = 20

package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/multihomed/multihomed/controller"
	"github.com/multihomed/multihomed/internal/buildinfo"
	"github.com/multihomed/multihomed/routing"
)

// StatusSource is what the metrics need of the controller loop: its
// snapshot and event history (a subset of Controller).
type StatusSource interface {
	Status() *controller.Status
	Events(after uint64, limit int) []controller.Event
	SubscribeEvents() (<-chan struct{}, func())
}

var allStates = []controller.State{controller.StateUnknown, controller.StateUp, controller.StateDegraded,
	controller.StateDown, controller.StateDrained, controller.StateForcedDown}

// Metrics holds the daemon's Prometheus metrics. Gauges are read from the
// controller's snapshot at scrape time (one consistent snapshot per
// scrape), the probe series (loss, RTT p95, burst counters) from the
// prober's when ReadHealthFrom set one; the other counters and the RTT
// histogram are fed as things happen: probes through ObserveProbe,
// decisions by Run following the event history.
type Metrics struct {
	reg *prometheus.Registry
	src StatusSource
	now func() time.Time
	// health, when set (ReadHealthFrom), gives the probe series live
	// figures in place of the snapshot of the controller's last pass.
	health HealthReader

	rtt          *prometheus.HistogramVec
	probes       *prometheus.CounterVec
	stateChanges *prometheus.CounterVec
	lastFailover *prometheus.GaugeVec

	mu sync.Mutex
	// lastOK holds each uplink's last successful probe, guarded by mu.
	lastOK map[string]time.Time
}

// NewMetrics registers every metric, Go runtime and process metrics
// included, on a registry of its own.
func NewMetrics(src StatusSource) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(), src: src, now: time.Now, lastOK: map[string]time.Time{},
		rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "multihomed_probe_rtt_seconds", Help: "Round-trip time of each successful health probe through the uplink.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"uplink"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multihomed_probes_total", Help: "Health probes sent through the uplink, by result (ok or fail).",
		}, []string{"uplink", "result"}),
		stateChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multihomed_uplink_state_changes_total", Help: "Decided uplink state changes, by the state entered.",
		}, []string{"uplink", "to"}),
		lastFailover: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "multihomed_last_failover_seconds",
			Help: "For the last time the uplink was decided down: seconds from its last successful probe to that decision (detection plus decision; remote convergence not included).",
		}, []string{"uplink"}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.rtt, m.probes, m.stateChanges, m.lastFailover, statusCollector{m}, buildInfoGauge(buildinfo.Read()))
	return m
}

// buildInfoGauge is multihomed_build_info, 1 with the build as labels
// (join it on instance to label other series with the version).
func buildInfoGauge(in buildinfo.Info) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "multihomed_build_info", Help: "Always 1; the labels say which build runs (as `multihomed version`).",
		ConstLabels: prometheus.Labels{"version": in.Version, "commit": in.Commit, "goversion": in.GoVersion, "gobgp": in.GoBGP},
	})
	g.Set(1)
	return g
}

// ReadHealthFrom makes the probe series (loss, RTT p95, bursts) read h's
// live figures at scrape time: without it they are those of the controller's
// last pass, which runs only when something changes or at the periodic
// resync, so the burst counters would move in steps of up to that long.
// Call it before serving.
func (m *Metrics) ReadHealthFrom(h HealthReader) { m.health = h }

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveProbe records one probe (health.Options.OnProbe). It is quick and
// never blocks: safe on the probing goroutines.
func (m *Metrics) ObserveProbe(uplink, _ string, rtt time.Duration, err error) {
	if err != nil {
		m.probes.WithLabelValues(uplink, "fail").Inc()
		return
	}
	m.probes.WithLabelValues(uplink, "ok").Inc()
	m.rtt.WithLabelValues(uplink).Observe(rtt.Seconds())
	now := m.now()
	m.mu.Lock()
	m.lastOK[uplink] = now
	m.mu.Unlock()
}

// Run follows the event history until ctx ends, counting state changes and
// timing failovers. Events the bounded history dropped before Run read
// them are not counted.
func (m *Metrics) Run(ctx context.Context) error {
	wake, cancel := m.src.SubscribeEvents()
	defer cancel()
	var after uint64
	for {
		for {
			evs := m.src.Events(after, maxPage)
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				m.onEvent(e)
				after = e.Seq
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

func (m *Metrics) onEvent(e controller.Event) {
	if e.Uplink == "" || e.Edge != "" {
		// Site-wide (fail-static): the gauge multihomed_fail_static shows
		// it. Another edge's uplink: multihomed_remote_uplink_state does.
		return
	}
	// Every state's series of the uplink exists from its first event on, at
	// 0 until entered: increase() sees a counter's first step only if an
	// earlier sample holds the value before it (an uplink that came up at
	// start and goes down later would otherwise show its first down as a
	// new series at 1, an increase of 0).
	for _, st := range allStates {
		m.stateChanges.WithLabelValues(e.Uplink, string(st))
	}
	m.stateChanges.WithLabelValues(e.Uplink, string(e.To)).Inc()
	if e.To != controller.StateDown || (e.From != controller.StateUp && e.From != controller.StateDegraded) {
		return
	}
	m.mu.Lock()
	ok, seen := m.lastOK[e.Uplink]
	m.mu.Unlock()
	if seen && !e.Time.Before(ok) {
		m.lastFailover.WithLabelValues(e.Uplink).Set(e.Time.Sub(ok).Seconds())
	}
}

var (
	descState       = prometheus.NewDesc("multihomed_uplink_state", "1 for the uplink's decided state, 0 for the others.", []string{"uplink", "state"}, nil)
	descLoss        = prometheus.NewDesc("multihomed_probe_loss_ratio", "Probe loss over the uplink's probe windows (0-1).", []string{"uplink"}, nil)
	descRTTP95      = prometheus.NewDesc("multihomed_probe_rtt_p95_seconds", "95th percentile probe RTT over the uplink's probe windows.", []string{"uplink"}, nil)
	descSession     = prometheus.NewDesc("multihomed_bgp_session_up", "1 while the BGP session is established.", []string{"uplink", "neighbor"}, nil)
	descHeldDown    = prometheus.NewDesc("multihomed_bgp_session_held_down", "1 while the daemon holds the BGP session down itself (max-prefix exceeded; see mhctl status for the cause and retry time).", []string{"uplink", "neighbor"}, nil)
	descReceived    = prometheus.NewDesc("multihomed_bgp_prefixes_received", "Prefixes the BGP session's peer sent, before import policy.", []string{"uplink", "neighbor"}, nil)
	descAccepted    = prometheus.NewDesc("multihomed_bgp_prefixes_accepted", "Prefixes of the BGP session that import policy accepted.", []string{"uplink", "neighbor"}, nil)
	descImportPhase = prometheus.NewDesc("multihomed_bgp_import_phase", "1 for the phase the BGP session's prefix counts are in, 0 for the other: receiving (a full table's initial transfer; accepted not counted yet) or counting (every route the peer sent is in the RIB; the counts wait for a rebuild, after a transfer, while another session's runs, or after a reload that changed import). Both 0 while the counts follow the update stream.", []string{"uplink", "neighbor", "phase"}, nil)
	descSoftResets  = prometheus.NewDesc("multihomed_bgp_soft_resets_out_total", "Outbound soft resets the speaker made on the BGP session (each runs the export policy over the whole table; with a full table an announcement change makes none).", []string{"uplink", "neighbor"}, nil)
	descPrefixes    = prometheus.NewDesc("multihomed_announced_prefixes", "Prefixes the speaker announces to the uplink.", []string{"uplink"}, nil)
	descPrepend     = prometheus.NewDesc("multihomed_announced_prepend", "AS-path prepend of each announced prefix.", []string{"uplink", "prefix"}, nil)
	descGShut       = prometheus.NewDesc("multihomed_announced_graceful_shutdown", "1 when the prefix carries GRACEFUL_SHUTDOWN (draining).", []string{"uplink", "prefix"}, nil)
	descEgress      = prometheus.NewDesc("multihomed_uplink_egress", "1 when the uplink carries site egress.", []string{"uplink"}, nil)
	descOverride    = prometheus.NewDesc("multihomed_override_active", "1 while an operator override is in force.", []string{"uplink", "kind"}, nil)
	descOvExpiry    = prometheus.NewDesc("multihomed_override_expires_timestamp_seconds", "Unix time at which an operator override set with an end (--for) lapses; absent for overrides without one.", []string{"uplink", "kind"}, nil)
	descFail        = prometheus.NewDesc("multihomed_fail_static", "1 while fail-static overrides the ladder (the site would otherwise be isolated).", nil, nil)
	descReconcile   = prometheus.NewDesc("multihomed_reconcile_errors_total", "Controller passes whose apply failed.", nil, nil)
	descPasses      = prometheus.NewDesc("multihomed_controller_passes_total", "Controller decision passes.", nil, nil)
	descApplyOK     = prometheus.NewDesc("multihomed_converged", "1 when the last pass applied without error.", nil, nil)
	descRemote      = prometheus.NewDesc("multihomed_remote_uplink_state", "1 for the state another edge of the site reports for its uplink (learned over iBGP), 0 for the others.", []string{"edge", "uplink", "state"}, nil)
	descRemoteAge   = prometheus.NewDesc("multihomed_remote_uplink_age_seconds", "Seconds since this edge learned the other edge's current state of its uplink.", []string{"edge", "uplink"}, nil)
	descBursts      = prometheus.NewDesc("multihomed_probe_bursts_total", "Suspicion bursts started on the uplink (a lost or late probe of a target that is not down). Resets when the uplink's device or health block changes.", []string{"uplink"}, nil)
	descBurstProbes = prometheus.NewDesc("multihomed_probe_burst_probes_total", "Extra probes the uplink's suspicion bursts sent, over all its targets (also counted in multihomed_probes_total). Resets when the uplink's device or health block changes.", []string{"uplink"}, nil)
	descBurstsSupp  = prometheus.NewDesc("multihomed_probe_bursts_suppressed_total", "Suspicions the uplink's burst budget refused a burst, and bursts it cut short. Resets when the uplink's device or health block changes.", []string{"uplink"}, nil)
	descInside      = prometheus.NewDesc("multihomed_uplink_inside_local_pref", "LOCAL_PREF of the uplink's full-table routes toward the core peers (ibgp.advertise: full only); 0 while they are not advertised inside.", []string{"uplink"}, nil)
	descRemoteOK    = prometheus.NewDesc("multihomed_remote_uplinks_usable", "Uplinks of the other edges that are usable (up or degraded): while above 0 this edge may withdraw its own without isolating the site.", nil, nil)
)

// statusCollector renders one controller snapshot per scrape.
type statusCollector struct{ m *Metrics }

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descLoss, descRTTP95, descSession, descHeldDown, descReceived, descAccepted, descImportPhase, descSoftResets, descPrefixes, descPrepend, descGShut, descEgress, descOverride, descOvExpiry, descFail, descReconcile, descPasses, descApplyOK, descRemote, descRemoteAge, descRemoteOK, descInside, descBursts, descBurstProbes, descBurstsSupp} {
		ch <- d
	}
	describePA(ch)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.src.Status()
	now := c.m.now()
	hsnap := st.Health
	if c.m.health != nil {
		hsnap = c.m.health.Snapshot()
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, d := range st.Desired.Uplinks {
		for _, s := range allStates {
			gauge(descState, b2f(d.State == s), d.Uplink, string(s))
		}
		gauge(descEgress, b2f(d.Egress), d.Uplink)
		if st.Desired.InsideAdvertise {
			gauge(descInside, float64(d.InsideLocalPref), d.Uplink)
		}
		if hs, ok := hsnap.Uplink(d.Uplink); ok {
			gauge(descLoss, hs.Loss/100, d.Uplink)
			gauge(descRTTP95, hs.RTTP95.Seconds(), d.Uplink)
			counter(descBursts, hs.Bursts, d.Uplink)
			counter(descBurstProbes, hs.BurstProbes, d.Uplink)
			counter(descBurstsSupp, hs.BurstsSuppressed, d.Uplink)
		}
		anns := st.Announced[d.Uplink]
		gauge(descPrefixes, float64(len(anns)), d.Uplink)
		for _, a := range anns {
			gauge(descPrepend, float64(a.Prepend), d.Uplink, a.Prefix.String())
			gauge(descGShut, b2f(a.GracefulShutdown), d.Uplink, a.Prefix.String())
		}
		o, has := st.Overrides[d.Uplink]
		active := has && o.Active(now)
		gauge(descOverride, b2f(active && o.Drain), d.Uplink, "drain")
		gauge(descOverride, b2f(active && o.ForceDown), d.Uplink, "force-down")
		gauge(descOverride, b2f(active && o.ExtraPrepend > 0), d.Uplink, "prepend")
		if active && !o.Expires.IsZero() {
			gauge(descOvExpiry, float64(o.Expires.UnixMilli())/1000, d.Uplink, overrideKind(o))
		}
	}
	for _, s := range st.Sessions {
		name := s.Uplink
		if s.Internal {
			name = "internal"
		}
		gauge(descSession, b2f(s.Established()), name, s.Neighbor.String())
		gauge(descHeldDown, b2f(s.HeldDown != ""), name, s.Neighbor.String())
		gauge(descReceived, float64(s.Received), name, s.Neighbor.String())
		gauge(descAccepted, float64(s.Accepted), name, s.Neighbor.String())
		for _, phase := range []string{routing.ImportReceiving, routing.ImportCounting} {
			gauge(descImportPhase, b2f(s.ImportPhase == phase), name, s.Neighbor.String(), phase)
		}
		counter(descSoftResets, s.SoftResetsOut, name, s.Neighbor.String())
	}
	for _, u := range st.Remote.Uplinks {
		for _, s := range allStates {
			gauge(descRemote, b2f(u.State == string(s)), u.Edge.String(), u.Uplink, string(s))
		}
		if !u.Since.IsZero() {
			gauge(descRemoteAge, max(now.Sub(u.Since), 0).Seconds(), u.Edge.String(), u.Uplink)
		}
	}
	gauge(descRemoteOK, float64(st.Desired.RemoteUsable))
	gauge(descFail, b2f(st.Desired.FailStatic))
	gauge(descApplyOK, b2f(st.ApplyError == "" && st.Passes > 0))
	counter(descReconcile, st.ReconcileErrors)
	counter(descPasses, st.Passes)
	collectPA(ch, st)
}

// Handler serves /metrics, /healthz (the process answers) and /readyz
// (the controller has decided at least once and the startup wait is over).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := m.src.Status()
		switch {
		case st.Passes == 0:
			http.Error(w, "not ready: the controller has not decided yet", http.StatusServiceUnavailable)
		case st.Desired.Waiting:
			http.Error(w, "not ready: waiting for the first health verdicts", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	return mux
}

// ServeMetrics serves m on addr until ctx ends.
func ServeMetrics(ctx context.Context, addr string, m *Metrics, log *slog.Logger) error {
	return serveHTTP(ctx, "metrics", "metrics.address", addr, m.Handler(), log)
}

// serveHTTP serves h on addr until ctx ends; what names the endpoint in
// logs and errors, field its setting.
func serveHTTP(ctx context.Context, what, field, addr string, h http.Handler, log *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info(what+": serving", "address", l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("%s: %w", what, err)
	}
}

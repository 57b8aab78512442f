package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// EdgeMetricsAddr is where the daemon serves /metrics inside the edge
// namespace when its config leaves metrics.address at the default.
const EdgeMetricsAddr = "127.0.0.1:9479"

// PrometheusOptions shape a lab Prometheus (StartPrometheus).
type PrometheusOptions struct {
	// Binary is the prometheus executable; "" means "prometheus" on PATH
	// (Debian package prometheus).
	Binary string
	// Dir receives the configuration, the rule files, the TSDB and the
	// log. The caller owns it (t.TempDir(), or a directory it removes).
	Dir string
	// Target is the daemon's metrics endpoint as seen from the namespace;
	// "" means EdgeMetricsAddr. The scrape job is called "multihomed", as
	// docs/prometheus/rules.yml requires.
	Target string
	// Listen is Prometheus's web address inside the namespace; "" means
	// 127.0.0.1:9090. Each lab namespace has its own loopback, so parallel
	// labs do not collide on it.
	Listen string
	// Interval is both the scrape and the rule evaluation interval; 0
	// means one second, so tests see a change within a few seconds.
	Interval time.Duration
	// Rules are the contents of rule files (YAML) to load, such as
	// docs/prometheus/rules.yml or ShortenFor's copy of it.
	Rules [][]byte
}

// Prometheus is a Prometheus server running inside a lab namespace,
// scraping the daemon there. Its HTTP API is reached through sockets
// opened inside that namespace, so it never listens on the host.
type Prometheus struct {
	ns      *netns.NS
	listen  string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	client  *http.Client
}

// StartPrometheus writes a configuration into opts.Dir and starts
// Prometheus in ns. It returns once the process runs; WaitReady waits for
// its API. Close stops it.
func StartPrometheus(ctx context.Context, ns *netns.NS, opts PrometheusOptions) (*Prometheus, error) {
	if opts.Dir == "" {
		return nil, errors.New("lab: PrometheusOptions.Dir is empty: give a directory for its config and TSDB")
	}
	if opts.Binary == "" {
		opts.Binary = "prometheus"
	}
	bin, err := exec.LookPath(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("lab: %s not found (Debian package prometheus): %w", opts.Binary, err)
	}
	if opts.Target == "" {
		opts.Target = EdgeMetricsAddr
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:9090"
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	var ruleFiles []string
	for i, r := range opts.Rules {
		path := filepath.Join(opts.Dir, fmt.Sprintf("rules-%d.yml", i))
		if err := os.WriteFile(path, r, 0o644); err != nil {
			return nil, fmt.Errorf("lab: write prometheus rules: %w", err)
		}
		ruleFiles = append(ruleFiles, path)
	}
	confPath := filepath.Join(opts.Dir, "prometheus.yml")
	if err := os.WriteFile(confPath, []byte(prometheusConf(opts.Target, opts.Interval, ruleFiles)), 0o644); err != nil {
		return nil, fmt.Errorf("lab: write prometheus config: %w", err)
	}
	p := &Prometheus{ns: ns, listen: opts.Listen, logPath: filepath.Join(opts.Dir, "prometheus.log"), done: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, fmt.Errorf("lab: prometheus log: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	p.cmd = ns.Command(context.WithoutCancel(ctx), bin,
		"--config.file="+confPath,
		"--storage.tsdb.path="+filepath.Join(opts.Dir, "tsdb"),
		"--web.listen-address="+opts.Listen,
		// Debian's defaults point at /etc/prometheus, which the lab must
		// not depend on.
		"--web.console.templates="+opts.Dir,
		"--web.console.libraries="+opts.Dir,
	)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start prometheus in %s: %w", ns.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	p.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := ns.Do(func() error {
					var err error
					c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
			DisableKeepAlives: true,
		},
	}
	return p, nil
}

// prometheusConf renders the server's configuration: one job,
// "multihomed", and the rule files.
func prometheusConf(target string, interval time.Duration, ruleFiles []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", interval, interval, interval)
	if len(ruleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range ruleFiles {
			fmt.Fprintf(&b, "  - %q\n", f)
		}
	}
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: multihomed\n    static_configs:\n      - targets: [%q]\n", target)
	return b.String()
}

// URL is Prometheus's base URL inside the namespace.
func (p *Prometheus) URL() string { return "http://" + p.listen }

// Log returns what Prometheus printed so far.
func (p *Prometheus) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// WaitReady waits up to timeout for /-/ready to answer 200 (the TSDB is
// open and the rules are loaded).
func (p *Prometheus) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		select {
		case <-p.done:
			return fmt.Errorf("lab: prometheus exited (%v); its log:\n%s", p.err, p.Log())
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/-/ready", nil)
		resp, err := p.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: prometheus not ready within %s (last: %s); its log:\n%s", timeout, last, p.Log())
		case <-p.done:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Sample is one series of an instant query's result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// String prints the sample as PromQL's console does.
func (s Sample) String() string {
	var ls []string
	for k, v := range s.Labels {
		ls = append(ls, k+"="+strconv.Quote(v))
	}
	slices.Sort(ls)
	return s.Labels["__name__"] + "{" + strings.Join(ls, ",") + "} " + strconv.FormatFloat(s.Value, 'g', -1, 64)
}

// Query runs an instant query (/api/v1/query) at the server's current
// time. A scalar result comes back as one sample without labels. The error
// carries Prometheus's own message for a query it rejects.
func (p *Prometheus) Query(ctx context.Context, expr string) ([]Sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		out := make([]Sample, 0, len(vec))
		for _, v := range vec {
			f, err := sampleValue(v.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", expr, err)
			}
			out = append(out, Sample{Labels: v.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		f, err := sampleValue(v)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		return []Sample{{Value: f}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %q; want an instant vector or scalar", expr, data.ResultType)
	}
}

// sampleValue reads the [time, "value"] pair of the HTTP API.
func sampleValue(v [2]any) (float64, error) {
	s, ok := v[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v[1])
	}
	return strconv.ParseFloat(s, 64)
}

// Alert is one active alert of /api/v1/alerts.
type Alert struct {
	Labels map[string]string `json:"labels"`
	// State is "pending" (the expression holds, its `for:` not yet
	// passed) or "firing".
	State    string    `json:"state"`
	ActiveAt time.Time `json:"activeAt"`
}

// Alerts returns the active (pending and firing) alerts.
func (p *Prometheus) Alerts(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	if err := p.get(ctx, "/api/v1/alerts", &data); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return data.Alerts, nil
}

// Rule is one loaded rule of /api/v1/rules and how its last evaluation
// went.
type Rule struct {
	Group string
	Name  string
	// Type is "alerting" or "recording".
	Type string
	// Health is "ok", "err" or "unknown" (not evaluated yet).
	Health    string
	LastError string
	// State is an alerting rule's "inactive", "pending" or "firing".
	State string
}

// Rules returns every loaded rule.
func (p *Prometheus) Rules(ctx context.Context) ([]Rule, error) {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Type      string `json:"type"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
				State     string `json:"state"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", &data); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	var out []Rule
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			out = append(out, Rule{Group: g.Name, Name: r.Name, Type: r.Type, Health: r.Health, LastError: r.LastError, State: r.State})
		}
	}
	return out, nil
}

// get fetches an API path and decodes the envelope's data into v; an
// "error" status becomes an error with Prometheus's type and message.
func (p *Prometheus) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %s: %w", path, resp.Status, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("prometheus: %s: %s", env.ErrorType, env.Error)
	}
	return json.Unmarshal(env.Data, v)
}

// Forward accepts connections on hostAddr (in the caller's namespace, such
// as 127.0.0.1:9090 on the host) and relays each to Prometheus inside the
// lab namespace, so a browser on the host can reach it. It stops when ctx
// ends. It returns the address it listens on.
func (p *Prometheus) Forward(ctx context.Context, hostAddr string) (net.Addr, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", hostAddr)
	if err != nil {
		return nil, fmt.Errorf("lab: forward prometheus: listen on %s: %w (pick another address)", hostAddr, err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(ctx, c)
		}
	}()
	return ln.Addr(), nil
}

// relay copies between a host connection and a new one to Prometheus.
func (p *Prometheus) relay(ctx context.Context, c net.Conn) {
	defer c.Close()
	dial := p.client.Transport.(*http.Transport).DialContext
	up, err := dial(ctx, "tcp", p.listen)
	if err != nil {
		return
	}
	defer up.Close()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
			up.Close()
		case <-finished:
		}
	}()
	go func() {
		_, _ = io.Copy(up, c)
		if hc, ok := up.(interface{ CloseWrite() error }); ok {
			_ = hc.CloseWrite()
		}
	}()
	_, _ = io.Copy(c, up)
}

// Close stops Prometheus: SIGTERM, then SIGKILL after ten seconds.
func (p *Prometheus) Close() { stopProcess(p.cmd.Process, p.done, 10*time.Second) }

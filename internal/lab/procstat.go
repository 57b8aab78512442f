package lab

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/multihomed/multihomed/internal/netns"
)

// MetricsAddr is where the daemon serves /metrics unless its configuration
// says otherwise (config.DefaultMetricsAddress), inside the edge namespace.
const MetricsAddr = "127.0.0.1:9479"

// PprofAddr is where a storm's daemon serves Go's profiling endpoints
// (StormConfig): CollectGarbage asks it for a collection before a memory
// sample.
const PprofAddr = "127.0.0.1:6061"

// StormConfig is the debug block a flap storm's daemon runs with, so that
// FlapStorm can make it collect garbage before each memory sample.
const StormConfig = "debug:\n  pprof_listen: " + PprofAddr + "\n"

// getInNS sends GET path to addr from inside ns (the connection is made
// there) and returns the response, whose body closes the connection.
func getInNS(ns *netns.NS, addr, path string) (*http.Response, error) {
	var conn net.Conn
	if err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/plain\r\nConnection: close\r\n\r\n", path, addr); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	resp.Body = readCloser{resp.Body, conn}
	return resp, nil
}

// readCloser closes the connection along with the body.
type readCloser struct {
	io.ReadCloser
	conn net.Conn
}

func (r readCloser) Close() error {
	err := r.ReadCloser.Close()
	if cerr := r.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// CollectGarbage makes the daemon in ns whose profiling endpoints are at
// addr run a garbage collection (a heap profile with gc=1), so that a RSS
// sample after it counts what the daemon keeps, not garbage not yet
// collected: an idle Go daemon may go two minutes without a collection.
func CollectGarbage(ns *netns.NS, addr string) error {
	resp, err := getInNS(ns, addr, "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("lab: %s/debug/pprof/heap: %s", addr, resp.Status)
	}
	return nil
}

// ScrapeMetrics fetches /metrics from addr inside ns and returns every
// sample as name{label=value,...} (labels sorted as the exposition sorts
// them) to its value; counters and gauges alike.
func ScrapeMetrics(ns *netns.NS, addr string) (map[string]float64, error) {
	resp, err := getInNS(ns, addr, "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out[name+"{"+strings.Join(labels, ",")+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return out, nil
}

// ProcSample is one reading of a daemon's resources.
type ProcSample struct {
	At time.Time
	// RSS is the resident set size in bytes (/proc/PID/status VmRSS).
	RSS int64
	// FDs counts the open file descriptors (/proc/PID/fd).
	FDs int
	// Goroutines is the daemon's own go_goroutines metric.
	Goroutines int
	// Passes is multihomed_controller_passes_total.
	Passes int64
}

// String is the sample in one line (RSS in MiB).
func (s ProcSample) String() string {
	return fmt.Sprintf("rss=%.1fMiB fds=%d goroutines=%d passes=%d", float64(s.RSS)/(1<<20), s.FDs, s.Goroutines, s.Passes)
}

// SampleDaemon reads pid's RSS and open descriptors from /proc and its
// goroutine count and controller passes from its metrics at addr inside
// ns. Reading another user's /proc/PID/fd needs root.
func SampleDaemon(ns *netns.NS, pid int, addr string) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return s, fmt.Errorf("lab: /proc/%d/status VmRSS %q: %w", pid, v, err)
				}
				s.RSS = kb << 10
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.FDs = len(fds)
	m, err := ScrapeMetrics(ns, addr)
	if err != nil {
		return s, err
	}
	g, ok := m["go_goroutines{}"]
	if !ok {
		return s, fmt.Errorf("lab: the daemon's metrics at %s have no go_goroutines", addr)
	}
	s.Goroutines = int(g)
	s.Passes = int64(m["multihomed_controller_passes_total{}"])
	return s, nil
}

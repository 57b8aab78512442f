package config

import (
	"strings"
	"testing"
)

// withHealth returns testdata/valid.yaml with a health block on isp-a.
func withHealth(t *testing.T, block string) *Config {
	t.Helper()
	text := edit(t, validYAML(t), "      med: 10\n", "      med: 10\n    health:\n"+block)
	cfg, err := Parse("test", []byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Uplinks[0].Health == nil {
		t.Fatal("test broken: the health block did not land on uplinks[0]")
	}
	return cfg
}

func TestAdvice(t *testing.T) {
	three := `      targets: ["icmp://2001:db8:9000:1::10", "icmp://203.0.113.10", "tcp://[2001:db8:9000:1::10]:80"]` + "\n"
	for _, c := range []struct {
		name, block string
		want        []string // paths advised about
	}{
		{"defaults, three targets", three, nil},
		{"no health", "", nil},
		{"timeout below the default rtt threshold", "      timeout: 75ms\n" + three, []string{"uplinks[0].health.degraded_rtt_enter"}},
		{"rtt threshold below the timeout", "      timeout: 75ms\n      degraded_rtt_enter: 40ms\n      degraded_rtt_leave: 20ms\n" + three, nil},
		{"one target", `      targets: ["icmp://2001:db8:9000:1::10"]` + "\n", []string{"uplinks[0].health.targets"}},
		{"a target with a longer timeout", "      timeout: 75ms\n" + `      targets: ["icmp://2001:db8:9000:1::10", {kind: icmp, address: "203.0.113.10", timeout: 500ms}, "icmp://2001:db8:9000:1::11"]` + "\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg *Config
			if c.block == "" {
				cfg = mustLoad(t, "testdata/valid.yaml")
			} else {
				cfg = withHealth(t, c.block)
			}
			got := Advice(cfg)
			var paths []string
			for _, p := range got {
				paths = append(paths, p.Path)
				if !strings.Contains(p.Message, "isp-a") {
					t.Errorf("%s: %q does not name the uplink", p.Path, p.Message)
				}
			}
			if strings.Join(paths, ",") != strings.Join(c.want, ",") {
				t.Errorf("Advice paths = %v, want %v (%v)", paths, c.want, got)
			}
		})
	}
}

// TestEgressTableNotAProbeTable: the site's defaults must not go into an
// uplink's probe table (that uplink's probes would leave elsewhere).
func TestEgressTableNotAProbeTable(t *testing.T) {
	text := edit(t, validYAML(t), "      med: 10\n", "      med: 10\n    health:\n      targets: [\"icmp://2001:db8:9000:1::10\"]\n") + "egress:\n  table: 4800\n"
	_, err := Parse("test", []byte(text), nil)
	if err == nil || !strings.Contains(err.Error(), "egress.table") || !strings.Contains(err.Error(), "probe table") {
		t.Fatalf("egress.table = the probe table of uplinks[0]: err = %v", err)
	}
	if _, err := Parse("test", []byte(edit(t, text, "table: 4800", "table: 4900")), nil); err != nil {
		t.Fatalf("another table: %v", err)
	}
}

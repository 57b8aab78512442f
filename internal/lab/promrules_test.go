package lab

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/multihomed/multihomed/internal/testenv"
	"go.yaml.in/yaml/v3"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string            `yaml:"alert"`
			Record string            `yaml:"record"`
			Expr   string            `yaml:"expr"`
			For    string            `yaml:"for"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestShortenForShippedRules: on docs/prometheus/rules.yml, every `for:`
// above the limit becomes the limit, shorter ones and rules without `for:`
// keep theirs, and nothing else (expressions, labels, order) changes; the
// copy still passes `promtool check rules`.
func TestShortenForShippedRules(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "..", "docs", "prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	out, shortened, err := ShortenFor(in, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var before, after ruleFile
	if err := yaml.Unmarshal(in, &before); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	if len(before.Groups) != len(after.Groups) {
		t.Fatalf("%d groups after, %d before", len(after.Groups), len(before.Groups))
	}
	var sawLong, sawShort, sawNone bool
	for gi, g := range before.Groups {
		if len(g.Rules) != len(after.Groups[gi].Rules) {
			t.Fatalf("group %s: %d rules after, %d before", g.Name, len(after.Groups[gi].Rules), len(g.Rules))
		}
		for ri, r := range g.Rules {
			a := after.Groups[gi].Rules[ri]
			if a.Alert != r.Alert || a.Record != r.Record || a.Expr != r.Expr || !maps.Equal(a.Labels, r.Labels) {
				t.Errorf("rule %d of %s changed beyond for: %+v -> %+v", ri, g.Name, r, a)
			}
			want := r.For
			switch {
			case r.For == "":
				sawNone = true
			case mustDuration(t, r.For) > 90*time.Second:
				want, sawLong = "1m30s", true
				if !slices.Contains(shortened, r.Alert) {
					t.Errorf("%s (for: %s) is not in the shortened list %v", r.Alert, r.For, shortened)
				}
			default:
				sawShort = true
			}
			if a.For != want {
				t.Errorf("%s: for %q after, want %q (was %q)", r.Alert+r.Record, a.For, want, r.For)
			}
		}
	}
	// The shipped file has each case; if it stops having one, this test
	// no longer proves that case.
	if !sawLong || !sawShort || !sawNone {
		t.Errorf("shipped rules lack a case: for above the limit %v, below it %v, absent %v", sawLong, sawShort, sawNone)
	}
	testenv.Need(t, "promtool") // Debian package prometheus; fails in CI
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the shortened copy: %v\n%s", err, b)
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("for: %q: %v", s, err)
	}
	return d
}

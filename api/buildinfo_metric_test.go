package api

import (
	"testing"

	"github.com/multihomed/multihomed/internal/buildinfo"
)

// TestBuildInfoMetric checks multihomed_build_info is 1 and labelled with
// the build that `multihomed version` prints.
func TestBuildInfoMetric(t *testing.T) {
	fams, err := NewMetrics(newFakeController()).Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	in := buildinfo.Read()
	want := map[string]string{"version": in.Version, "commit": in.Commit, "goversion": in.GoVersion, "gobgp": in.GoBGP}
	for _, f := range fams {
		if f.GetName() != "multihomed_build_info" {
			continue
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("multihomed_build_info has %d series, want 1", len(f.GetMetric()))
		}
		m := f.GetMetric()[0]
		if v := m.GetGauge().GetValue(); v != 1 {
			t.Errorf("multihomed_build_info = %v, want 1", v)
		}
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("label %s = %q, want %q", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Errorf("labels %v, want exactly %v", got, want)
		}
		return
	}
	t.Fatal("no multihomed_build_info family")
}

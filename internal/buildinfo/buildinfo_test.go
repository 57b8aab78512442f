package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromBuild(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/multihomed/multihomed", Version: "(devel)"},
		Deps:      []*debug.Module{{Path: "github.com/osrg/gobgp/v4", Version: "v4.8.0"}, {Path: "github.com/spf13/cobra", Version: "v1.10.2"}},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "c3a7a70aaaa"},
			{Key: "vcs.time", Value: "2026-11-27T10:00:00Z"},
			{Key: "vcs.modified", Value: "false"},
		},
	}
	dirty := *vcs
	dirty.Settings = append([]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, vcs.Settings[:2]...)
	installed := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/multihomed/multihomed", Version: "v1.4.0"},
		Deps:      []*debug.Module{{Path: "github.com/osrg/gobgp/v4", Version: "v4.8.0", Replace: &debug.Module{Path: "../gobgp", Version: "v4.8.1-fix"}}},
	}
	client := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}

	for _, tc := range []struct {
		name                 string
		bi                   *debug.BuildInfo
		ldVer, ldCom, ldDate string
		want                 Info
	}{
		{"vcs fallbacks", vcs, "", "", "",
			Info{Version: "devel", Commit: "c3a7a70aaaa", Date: "2026-11-27T10:00:00Z", GoVersion: "go1.26.8", GoBGP: "v4.8.0"}},
		{"dirty tree", &dirty, "", "", "",
			Info{Version: "devel", Commit: "c3a7a70aaaa-dirty", Date: "2026-11-27T10:00:00Z", GoVersion: "go1.26.8", GoBGP: "v4.8.0"}},
		{"linker stamps win", &dirty, "v1.2.3", "abc123", "2026-11-01T00:00:00Z",
			Info{Version: "v1.2.3", Commit: "abc123", Date: "2026-11-01T00:00:00Z", GoVersion: "go1.26.8", GoBGP: "v4.8.0"}},
		{"go install @version, replaced gobgp", installed, "", "", "",
			Info{Version: "v1.4.0", Commit: Unknown, Date: Unknown, GoVersion: "go1.26.8", GoBGP: "v4.8.1-fix (replaced)"}},
		{"binary without gobgp", client, "", "", "",
			Info{Version: "devel", Commit: Unknown, Date: Unknown, GoVersion: "go1.26.8", GoBGP: "not linked"}},
		{"no build info", nil, "", "", "",
			Info{Version: "devel", Commit: Unknown, Date: Unknown, GoVersion: Unknown, GoBGP: Unknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuild(tc.bi, tc.ldVer, tc.ldCom, tc.ldDate)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("fromBuild (-want +got):\n%s", d)
			}
		})
	}
}

// TestReadRunningBinary checks Read against the test binary itself: the
// toolchain records its Go version, and the module links GoBGP.
func TestReadRunningBinary(t *testing.T) {
	in := Read()
	if in.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", in.GoVersion, runtime.Version())
	}
	for name, v := range map[string]string{"Version": in.Version, "Commit": in.Commit, "Date": in.Date, "GoBGP": in.GoBGP} {
		if v == "" {
			t.Errorf("%s is empty", name)
		}
	}
}

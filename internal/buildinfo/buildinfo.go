package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Set by the linker in release builds (-ldflags -X); empty otherwise.
var (
	version string
	commit  string
	date    string
)

// gobgpModule is the module whose version Info.GoBGP reports.
const gobgpModule = "github.com/osrg/gobgp/v4"

// Unknown stands for a field neither the linker nor the toolchain recorded.
const Unknown = "unknown"

// Info describes one build. No field is ever empty: what is not known
// reads Unknown (or "not linked" for GoBGP in a binary without it).
type Info struct {
	Version   string
	Commit    string
	Date      string
	GoVersion string
	GoBGP     string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuild(bi, version, commit, date)
}

// fromBuild merges the linker-stamped values (which win) with what the
// toolchain recorded in bi (nil when the binary carries none).
func fromBuild(bi *debug.BuildInfo, ldVersion, ldCommit, ldDate string) Info {
	in := Info{Version: ldVersion, Commit: ldCommit, Date: ldDate, GoVersion: Unknown, GoBGP: Unknown}
	var modified bool
	if bi != nil {
		in.GoVersion = bi.GoVersion
		// "(devel)" is what a build from a checkout reports: no version.
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		in.GoBGP = "not linked"
		for _, d := range bi.Deps {
			if d.Path == gobgpModule {
				in.GoBGP = d.Version
				if d.Replace != nil {
					in.GoBGP = d.Replace.Version + " (replaced)"
				}
			}
		}
	}
	if in.Version == "" {
		in.Version = "devel"
	}
	if in.Commit == "" {
		in.Commit = Unknown
	} else if modified && ldCommit == "" {
		// Only the toolchain knows the tree was dirty; a stamped commit
		// says what the release script meant.
		in.Commit += "-dirty"
	}
	if in.Date == "" {
		in.Date = Unknown
	}
	return in
}

// String renders the information one "key: value" line each, the output
// of `multihomed version` and `mhctl version`.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "version:    %s\n", i.Version)
	fmt.Fprintf(&b, "commit:     %s\n", i.Commit)
	fmt.Fprintf(&b, "built:      %s\n", i.Date)
	fmt.Fprintf(&b, "go:         %s\n", i.GoVersion)
	fmt.Fprintf(&b, "gobgp:      %s\n", i.GoBGP)
	return b.String()
}

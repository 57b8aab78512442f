package main

import (
	"bytes"
	"testing"

	"github.com/multihomed/multihomed/internal/buildinfo"
)

// TestVersionCommand runs `multihomed version` and expects the build
// information of this binary, GoBGP's version included (the daemon links it).
func TestVersionCommand(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	in := buildinfo.Read()
	if out.String() != in.String() {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), in.String())
	}
	if in.GoBGP == "not linked" || in.GoBGP == buildinfo.Unknown {
		t.Errorf("gobgp version %q: the daemon links GoBGP, its version must show", in.GoBGP)
	}
}

package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/internal/buildinfo"
)

// TestGetVersion: a viewer asks the served API for the daemon's build and
// gets the running binary's, field for field, no field empty.
func TestGetVersion(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	got, err := h.client(t, &h.pki.viewer).GetVersion(testCtx(t), &apiv1.GetVersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	in := buildinfo.Read()
	want := &apiv1.GetVersionResponse{Version: in.Version, Commit: in.Commit, Built: in.Date, GoVersion: in.GoVersion, Gobgp: in.GoBGP}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("GetVersion (-want +got):\n%s", diff)
	}
	for name, v := range map[string]string{"version": got.GetVersion(), "commit": got.GetCommit(), "built": got.GetBuilt(), "go_version": got.GetGoVersion(), "gobgp": got.GetGobgp()} {
		if v == "" {
			t.Errorf("%s is empty; buildinfo says unknown rather than nothing", name)
		}
	}
}

// TestVersionToProto: each field lands where its name says (distinct
// values, so a swap shows).
func TestVersionToProto(t *testing.T) {
	in := buildinfo.Info{Version: "0.1.0", Commit: "c3a7a70", Date: "2026-11-27T12:00:00Z", GoVersion: "go1.26.0", GoBGP: "v4.0.0"}
	want := &apiv1.GetVersionResponse{Version: "0.1.0", Commit: "c3a7a70", Built: "2026-11-27T12:00:00Z", GoVersion: "go1.26.0", Gobgp: "v4.0.0"}
	if diff := cmp.Diff(want, versionToProto(in), protocmp.Transform()); diff != "" {
		t.Errorf("versionToProto (-want +got):\n%s", diff)
	}
}

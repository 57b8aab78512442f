package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/multihomed/multihomed/api/client"
	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/internal/buildinfo"
)

// versionDaemon answers GetVersion with its build, or with err.
type versionDaemon struct {
	apiv1.UnimplementedMultihomedServer
	build *apiv1.GetVersionResponse
	err   error
}

func (d versionDaemon) GetVersion(context.Context, *apiv1.GetVersionRequest) (*apiv1.GetVersionResponse, error) {
	return d.build, d.err
}

var (
	ownBuild    = buildinfo.Info{Version: "0.2.0", Commit: "c3a7a70", Date: "2026-11-27T12:00:00Z", GoVersion: "go1.26.1", GoBGP: "not linked"}
	daemonBuild = &apiv1.GetVersionResponse{Version: "0.1.9", Commit: "9f00d1e-dirty", Built: "2026-11-20T08:30:00Z", GoVersion: "go1.26.0", Gobgp: "v4.0.0"}
)

// TestRenderVersion: mhctl's build, then the daemon's indented under
// "daemon:"; or, when the daemon did not answer, mhctl's and a line saying
// whether it could not be reached or refused.
func TestRenderVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"daemon", nil},
		{"unreachable", codedError{exitUnreachable, fmt.Errorf("%w: socket /run/multihomed/api.sock: no such file or directory", client.ErrUnreachable)}},
		{"unavailable", status.Error(codes.Unavailable, "connection refused")},
		{"refused", status.Error(codes.PermissionDenied, "viewer role needed")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			d := daemonBuild
			if tc.err != nil {
				d = nil
			}
			if err := renderVersion(&b, ownBuild, d, tc.err); err != nil {
				t.Fatal(err)
			}
			golden(t, "version-"+tc.name, b.String())
		})
	}
}

// TestVersionCommand runs `mhctl version` against a daemon, one that
// refuses, and none: its own build comes first every time; the daemon's
// follows or a line says why not, and the exit status is the call's.
func TestVersionCommand(t *testing.T) {
	own := buildinfo.Read().String()
	for _, tc := range []struct {
		name     string
		socket   string
		wantCode int
		wantLine string
	}{
		{"daemon answers", serveFake(t, versionDaemon{build: daemonBuild}), exitOK, "  commit:     9f00d1e-dirty\n"},
		{"daemon refuses", serveFake(t, versionDaemon{err: status.Error(codes.PermissionDenied, "viewer role needed")}), exitAuth, "daemon:     did not answer: "},
		{"no daemon", t.TempDir() + "/none.sock", exitUnreachable, "daemon:     cannot be reached: socket "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(t.Context(), []string{"version", "--socket", tc.socket}, &out, &errb)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, errb.String())
			}
			if !strings.HasPrefix(out.String(), own) {
				t.Errorf("output does not start with mhctl's own build:\n%s\nwant first:\n%s", out.String(), own)
			}
			if !strings.Contains(out.String(), tc.wantLine) {
				t.Errorf("output lacks %q:\n%s", tc.wantLine, out.String())
			}
			if (code != exitOK) != (errb.Len() > 0) {
				t.Errorf("exit %d with stderr %q: an error is on stderr exactly when the exit status says so", code, errb.String())
			}
		})
	}
}

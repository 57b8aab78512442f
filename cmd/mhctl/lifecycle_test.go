package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// recordingDaemon answers ResetUplink and Shutdown and records what it
// was asked.
type recordingDaemon struct {
	apiv1.UnimplementedMultihomedServer
	mu    sync.Mutex
	calls []string
}

func (d *recordingDaemon) record(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, s)
}

func (d *recordingDaemon) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

func (d *recordingDaemon) ResetUplink(_ context.Context, r *apiv1.ResetUplinkRequest) (*apiv1.ResetUplinkResponse, error) {
	if r.GetUplink() != "isp-a" {
		return nil, status.Errorf(codes.NotFound, "no uplink %q", r.GetUplink())
	}
	d.record("reset " + r.GetUplink() + " " + r.GetReason())
	return &apiv1.ResetUplinkResponse{}, nil
}

func (d *recordingDaemon) Shutdown(_ context.Context, r *apiv1.ShutdownRequest) (*apiv1.ShutdownResponse, error) {
	if !r.GetWithdraw() {
		return nil, status.Error(codes.InvalidArgument, "withdraw is false")
	}
	d.record("shutdown withdraw " + r.GetReason())
	return &apiv1.ShutdownResponse{}, nil
}

// serveFake serves d on a unix socket and returns its path. The socket
// credentials carry nothing on the wire, so a plain server speaks to
// mhctl's client.UnixCredentials.
func serveFake(t *testing.T, d apiv1.MultihomedServer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(insecure.NewCredentials()))
	apiv1.RegisterMultihomedServer(gs, d)
	done := make(chan struct{})
	go func() { _ = gs.Serve(l); close(done) }()
	t.Cleanup(func() { gs.Stop(); <-done })
	return path
}

// TestResetAndShutdown: mhctl reset and shutdown send what they say,
// shutdown refuses to run without --withdraw (nothing is sent), and the
// daemon's answers map to exit codes.
func TestResetAndShutdown(t *testing.T) {
	d := &recordingDaemon{}
	sock := serveFake(t, d)
	tests := []struct {
		args []string
		code int
		call string
	}{
		{[]string{"reset", "isp-a", "--reason", "max-prefix fixed"}, exitOK, "reset isp-a max-prefix fixed"},
		{[]string{"reset", "isp-z"}, exitNotFound, ""},
		{[]string{"shutdown", "--reason", "retired"}, exitUsage, ""},
		{[]string{"shutdown", "--withdraw"}, exitUsage, ""}, // --reason is required
		{[]string{"shutdown", "--withdraw", "--reason", "edge retired"}, exitOK, "shutdown withdraw edge retired"},
	}
	for _, tt := range tests {
		before := len(d.Calls())
		var out, errb bytes.Buffer
		args := append([]string{"--socket", sock}, tt.args...)
		if got := run(t.Context(), args, &out, &errb); got != tt.code {
			t.Errorf("mhctl %s: exit %d (%s); want %d", strings.Join(tt.args, " "), got, errb.String(), tt.code)
		}
		calls := d.Calls()[before:]
		switch {
		case tt.call == "" && len(calls) > 0:
			t.Errorf("mhctl %s: the daemon was asked %v; want nothing", strings.Join(tt.args, " "), calls)
		case tt.call != "" && !slices.Equal(calls, []string{tt.call}):
			t.Errorf("mhctl %s: the daemon was asked %v; want %q", strings.Join(tt.args, " "), calls, tt.call)
		}
	}
}

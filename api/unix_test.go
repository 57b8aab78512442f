package api

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/multihomed/multihomed/api/client"
	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/internal/testenv"
)

// TestServeUnixSocket: Serve creates the socket with mode 0660, a socket
// peer with the daemon's uid is an admin named by its uid, a second Serve on the same path is
// refused while the first runs, and Serve stops (with a stream open) and
// removes the socket when its context ends.
func TestServeUnixSocket(t *testing.T) {
	ctl, cfg, log := newFakeController(), newFakeConfig(t), &lockedBuffer{}
	svc := NewServer(Options{Controller: ctl, Config: cfg, Logger: slog.New(slog.NewTextHandler(log, nil))})
	path := filepath.Join(t.TempDir(), "run", "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, svc, config.API{Socket: path, SocketMode: 0o660}, slog.New(slog.DiscardHandler))
	}()

	cc, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(client.UnixCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cl := apiv1.NewMultihomedClient(cc)
	var drainErr error
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, drainErr = cl.Drain(testCtx(t), &apiv1.DrainRequest{Uplink: "isp-a", Reason: "test"})
		if drainErr == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if drainErr != nil {
		t.Fatal(drainErr)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %s: %v, %v; want a socket with mode 0660", path, fi.Mode(), err)
	}
	// The test connects as the daemon's own user: admin (see identify).
	if want := fmt.Sprintf("who=\"unix:uid=%d\" role=admin", os.Getuid()); !strings.Contains(log.String(), want) {
		t.Errorf("audit log lacks %q:\n%s", want, log.String())
	}
	if _, err := ListenUnix(path, 0o660, ""); err == nil || !strings.Contains(err.Error(), "served by another process") {
		t.Errorf("second listener on a live socket: %v; want refused", err)
	}
	// An open stream must not hold the stop up.
	st, err := cl.WatchEvents(testCtx(t), &apiv1.WatchEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_ = st
	testenv.Eventually(t, "the stream subscribed", 10*time.Second, func() (bool, string) {
		return ctl.subscribers() > 0, ""
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

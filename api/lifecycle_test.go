package api

import (
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// TestResetUplink: an operator resets an uplink's sessions (the controller
// is asked, with who); the call is audited with the reason; an unknown
// uplink is NotFound; a viewer is refused.
func TestResetUplink(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	op := h.client(t, &h.pki.operator)
	if _, err := op.ResetUplink(testCtx(t), &apiv1.ResetUplinkRequest{Uplink: "isp-b", Reason: "max-prefix fixed by ISP-B, INC-88"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.ctl.Calls(), "reset isp-b by cert:CN=noc-alice") {
		t.Errorf("controller calls %v; want the reset of isp-b by noc-alice", h.ctl.Calls())
	}
	if log := h.log.String(); !strings.Contains(log, "call=/multihomed.v1.Multihomed/ResetUplink") || !strings.Contains(log, "INC-88") {
		t.Errorf("no audit line with the reason:\n%s", log)
	}
	if _, err := op.ResetUplink(testCtx(t), &apiv1.ResetUplinkRequest{Uplink: "isp-z"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown uplink: %v; want NotFound", err)
	}
	if _, err := h.client(t, &h.pki.viewer).ResetUplink(testCtx(t), &apiv1.ResetUplinkRequest{Uplink: "isp-b"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("viewer: %v; want PermissionDenied", err)
	}
}

// TestShutdown: only an admin may decommission; withdraw must be set and
// a reason given; the controller decommissions first, then the daemon is
// told to exit, once; every attempt is audited.
func TestShutdown(t *testing.T) {
	h := newHarness(t, "bufconn", harnessOpts{})
	req := &apiv1.ShutdownRequest{Withdraw: true, Reason: "edge retired, CHG-9"}
	for _, w := range []struct {
		name string
		cert *tls.Certificate
		want codes.Code
	}{
		{"viewer", &h.pki.viewer, codes.PermissionDenied},
		{"operator", &h.pki.operator, codes.PermissionDenied},
		{"no certificate", nil, codes.Unauthenticated},
	} {
		if _, err := h.client(t, w.cert).Shutdown(testCtx(t), req); status.Code(err) != w.want {
			t.Errorf("%s: %v; want %v", w.name, err, w.want)
		}
	}
	admin := h.client(t, &h.pki.admin)
	if _, err := admin.Shutdown(testCtx(t), &apiv1.ShutdownRequest{Reason: "x"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("without withdraw: %v; want InvalidArgument", err)
	}
	if _, err := admin.Shutdown(testCtx(t), &apiv1.ShutdownRequest{Withdraw: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("without reason: %v; want InvalidArgument", err)
	}
	if h.exits.Load() != 0 || slices.Contains(h.ctl.Calls(), "decommission by cert:CN=noc-root") {
		t.Fatalf("refused calls decommissioned or exited: %v, %d exits", h.ctl.Calls(), h.exits.Load())
	}
	if _, err := admin.Shutdown(testCtx(t), req); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(h.ctl.Calls(), "decommission by cert:CN=noc-root") || h.exits.Load() != 1 {
		t.Errorf("after Shutdown: calls %v, %d exits; want the decommission and one exit", h.ctl.Calls(), h.exits.Load())
	}
	log := h.log.String()
	for _, want := range []string{`who="cert:CN=noc-root" role=admin call=/multihomed.v1.Multihomed/Shutdown`, `who="cert:CN=noc-alice" role=operator call=/multihomed.v1.Multihomed/Shutdown`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestSocketPeerRoles: on the socket, root and the daemon's own user are
// admins (they could stop the daemon anyway); any other peer the socket's
// mode and group let in is an operator.
func TestSocketPeerRoles(t *testing.T) {
	a := &authorizer{euid: 990}
	for uid, want := range map[int]Role{0: RoleAdmin, 990: RoleAdmin, 1234: RoleOperator, -1: RoleOperator} {
		ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: unixAuthInfo{uid: uid}})
		id, err := a.identify(ctx)
		if err != nil || id.Role != want {
			t.Errorf("uid %d: %v (%v); want %v", uid, id.Role, err, want)
		}
	}
}

package api

import (
	"crypto/tls"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// TestAuditBounded (#13): a Drain with a 200 KiB reason (the old code logged 1 MiB) costs the log at
// most one short line: nothing of the request from a caller without a
// valid certificate, a summary cut at MaxAuditField (and marked) from one
// with a role, a newline in the request never starts a second line.
func TestAuditBounded(t *testing.T) {
	h := newHarness(t, "tcp", harnessOpts{})
	huge := strings.Repeat("A", 200<<10)
	for _, tc := range []struct {
		name      string
		cert      *tls.Certificate
		uplink    string
		code      codes.Code
		wantInLog string
	}{
		{"no certificate", nil, "isp-a", codes.Unauthenticated, "(not logged: caller not authenticated)"},
		{"foreign CA", &h.pki.foreign, "isp-a", codes.Unauthenticated, "(not logged: caller not authenticated)"},
		{"viewer", &h.pki.viewer, "isp-a", codes.PermissionDenied, "bytes cut]"},
		{"operator", &h.pki.operator, "isp-a\nlevel=ERROR msg=forged", codes.InvalidArgument, "bytes cut]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.log.String())
			cl := apiv1.NewMultihomedClient(h.dial(t, tc.cert, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4<<20), grpc.MaxCallSendMsgSize(4<<20))))
			_, err := cl.Drain(testCtx(t), &apiv1.DrainRequest{Uplink: tc.uplink, Reason: huge})
			if status.Code(err) != tc.code {
				t.Fatalf("Drain: %v; want %v", err, tc.code)
			}
			got := h.log.String()[before:]
			if n := strings.Count(got, "\n"); n != 1 {
				t.Fatalf("%d log lines for one call; want 1:\n%.2000s", n, got)
			}
			if len(got) > 3*MaxAuditField+400 {
				t.Errorf("audit line is %d bytes; want at most %d", len(got), 3*MaxAuditField+400)
			}
			if !strings.Contains(got, tc.wantInLog) {
				t.Errorf("audit line lacks %q:\n%s", tc.wantInLog, got)
			}
			if tc.code == codes.Unauthenticated && strings.Contains(got, "AAAA") {
				t.Errorf("the request of an unauthenticated caller was logged:\n%.500s", got)
			}
		})
	}
}

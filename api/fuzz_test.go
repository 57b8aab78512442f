package api

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// FuzzCheckOverride: request checks never panic, refuse with
// ErrInvalidRequest only, and whatever they accept is within bounds.
func FuzzCheckOverride(f *testing.F) {
	f.Add("isp-a", "maintenance", int64(7200), int32(0), uint32(0), uint8(0))
	f.Add("isp-a", "", int64(-1), int32(5), uint32(11), uint8(1))
	f.Add("", "x\x00", int64(1<<40), int32(-1), uint32(3), uint8(2))
	f.Fuzz(func(t *testing.T, uplink, reason string, secs int64, nanos int32, count uint32, action uint8) {
		req := &apiv1.SetOverrideRequest{Uplink: uplink, Reason: reason, Duration: &durationpb.Duration{Seconds: secs, Nanos: nanos}}
		switch action % 4 {
		case 0:
			req.Action = &apiv1.SetOverrideRequest_ForceDown{ForceDown: &apiv1.ForceDown{}}
		case 1:
			req.Action = &apiv1.SetOverrideRequest_Prepend{Prepend: &apiv1.Prepend{Count: count}}
		case 2:
			req.Action = &apiv1.SetOverrideRequest_Clear{Clear: &apiv1.Clear{}}
		}
		err := CheckOverride(req)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v is not ErrInvalidRequest", err)
			}
			return
		}
		d, err := ParseDuration(req.GetDuration())
		if err != nil || d < 0 || d > MaxOverrideDuration {
			t.Fatalf("accepted duration %v (%v)", d, err)
		}
		if p := req.GetPrepend(); p != nil && (p.GetCount() < 1 || p.GetCount() > 10) {
			t.Fatalf("accepted prepend %d", p.GetCount())
		}
		if req.GetClear() == nil && (reason == "" || len(reason) > MaxReasonLen) {
			t.Fatalf("accepted reason %q", reason)
		}
		// A wire round trip keeps an accepted request acceptable.
		data, _ := proto.Marshal(req)
		var back apiv1.SetOverrideRequest
		if err := proto.Unmarshal(data, &back); err != nil || CheckOverride(&back) != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

package api

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/multihomed/multihomed/config"
	"github.com/multihomed/multihomed/controller"
)

// ErrInvalidRequest marks a request this package refused before acting on
// it (a missing reason, a negative duration); it maps to InvalidArgument.
var ErrInvalidRequest = errors.New("invalid request")

// ErrOverrideConflict marks a command refused because the uplink holds
// another kind of override (Undrain of an uplink forced down); it maps to
// FailedPrecondition.
var ErrOverrideConflict = errors.New("another override is in force")

// statusOf maps an error to a gRPC status. Sentinels: ErrInvalidRequest ->
// InvalidArgument, ErrOverrideConflict -> FailedPrecondition, controller.ErrUnknownUplink -> NotFound, *config.Error ->
// FailedPrecondition with every problem in a BadRequest detail, context
// errors -> Canceled / DeadlineExceeded; anything else is Internal.
func statusOf(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ce *config.Error
	switch {
	case errors.Is(err, ErrInvalidRequest):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrOverrideConflict), errors.Is(err, controller.ErrNotDrained):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, controller.ErrUnknownUplink):
		return status.Error(codes.NotFound, err.Error())
	case errors.As(err, &ce):
		// The message names the count only; the problems go in the detail,
		// bounded like ValidateConfig's answer.
		st := status.New(codes.FailedPrecondition, fmt.Sprintf("config: %s: %d problem(s); the running configuration stays", truncate(ce.Source, MaxProblemLen), len(ce.Problems)))
		br := &errdetails.BadRequest{}
		for _, p := range boundedProblems(ce.Problems) {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: p.GetPath(), Description: p.GetMessage()})
		}
		if d, derr := st.WithDetails(br); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func wrapInvalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
}

package client

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// Problem is one configuration problem: Path names the setting
// (uplinks[1].bgp.neighbor), Message says what is wrong and the fix.
type Problem struct {
	Path, Message string
}

// ConfigProblems returns the configuration problems a ReloadConfig error
// carries (a BadRequest detail), or nil.
func ConfigProblems(err error) []Problem {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	var out []Problem
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, Problem{Path: v.GetField(), Message: v.GetDescription()})
			}
		}
	}
	return out
}

package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

// parseFor parses a --for value: a Go duration (90m, 2h30m) or a number of
// days (1d, 7d). Zero and negative durations are refused: leave --for out
// for no expiry.
func parseFor(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("--for %q: write a duration such as 90m, 2h or 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("--for %q: write a duration such as 90m, 2h or 7d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--for %q: must be positive; leave --for out for no expiry", s)
	}
	return d, nil
}

// parseOverride parses `override UPLINK ACTION [ARG]` arguments:
// force-down, prepend N (1-10), or clear.
func parseOverride(args []string) (*apiv1.SetOverrideRequest, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("usage: override UPLINK force-down|prepend N|clear")
	}
	req := &apiv1.SetOverrideRequest{Uplink: args[0]}
	rest := args[2:]
	switch args[1] {
	case "force-down", "down":
		req.Action = &apiv1.SetOverrideRequest_ForceDown{ForceDown: &apiv1.ForceDown{}}
	case "clear":
		req.Action = &apiv1.SetOverrideRequest_Clear{Clear: &apiv1.Clear{}}
	case "prepend":
		if len(rest) != 1 {
			return nil, fmt.Errorf("prepend needs a count: override %s prepend N (1-10)", args[0])
		}
		n, err := strconv.ParseUint(rest[0], 10, 8)
		if err != nil || n < 1 || n > 10 {
			return nil, fmt.Errorf("prepend %q: give a count from 1 to 10", rest[0])
		}
		req.Action = &apiv1.SetOverrideRequest_Prepend{Prepend: &apiv1.Prepend{Count: uint32(n)}}
		rest = nil
	default:
		return nil, fmt.Errorf("%q is not an override; use force-down, prepend N or clear", args[1])
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q after %s", rest, args[1])
	}
	return req, nil
}

package config

import (
	"fmt"
	"time"
)

// Advice returns what in a valid configuration is allowed but probably not
// meant: settings that can never take effect, or choices that make the
// daemon blind to what it should see. Each has the path and what to change.
// The daemon logs them at start and returns them with a reload's warnings;
// none stops it.
//
// The advice starts with the notes validation left: deprecated keys, secret
// files readable by every user (outside the production profile, which
// refuses them), and, from CheckRequest, the files it did not read.
func Advice(cfg *Config) []Problem {
	out := append([]Problem(nil), cfg.notes...)
	for i, u := range cfg.Uplinks {
		h := u.Health
		if h == nil {
			continue
		}
		base := fmt.Sprintf("uplinks[%d].health", i)
		// RTT p95 is taken over replies; a probe slower than its timeout
		// is a loss, so a threshold at or above every timeout is out of
		// reach and added latency only ever shows as loss.
		var longest time.Duration
		for _, t := range h.Targets {
			longest = max(longest, t.Timeout)
		}
		if len(h.Targets) > 0 && h.RTTEnter >= longest {
			out = append(out, Problem{Path: base + ".degraded_rtt_enter", Message: fmt.Sprintf(
				"%v is not below the probe timeout (%v): a reply that slow counts as lost, so RTT can never make %s degraded; use a value below the timeout, for example %v",
				h.RTTEnter, longest, u.Name, (longest * 2 / 3).Round(time.Millisecond))})
		}
		if len(h.Targets) == 1 {
			out = append(out, Problem{Path: base + ".targets", Message: fmt.Sprintf(
				"one target: when it fails, %s looks down although the path may be fine; add two more in other networks (see docs/health.md, choosing targets)", u.Name)})
		}
	}
	return out
}

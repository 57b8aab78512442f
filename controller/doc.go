// Package controller owns the site's decisions: from what the sources
// observe (health verdicts, BGP session states, link carrier, operator
// overrides, the time) it decides what each ISP hears and where egress
// leaves, and has the appliers (bgp, fib) make it so.
//
// Decide is a pure function of the configuration and an immutable Observed
// value: no I/O, no clock, no logging. Everything time-based (hold-downs,
// override expiry, drain grace, the startup wait) is a timestamp inside
// Observed, and Decide's own memory between calls travels in
// Desired.Memory, which the loop hands back in the next Observed.
//
// The Loop is the one goroutine that decides. Sources wake it through a
// level-triggered signal; operator commands reach it as messages with a
// reply channel; readers get an atomically swapped Status. It never blocks
// on a client, and an applier error is retried with backoff without
// stopping it.
//
// Decide owns the whole uplink policy: carrier and BGP session loss, the
// one hold-down with backoff, session resets after carrier loss (as
// Desired.ResetSessions), fail-static, the ladder and an explicit egress
// tier per uplink, keyed by uplink name. Health reports probe verdicts
// and figures only. What it keeps across restarts lives in
// controller.state_dir: the overrides, the last applied decision
// (decision.json, restored before End-of-RIB) and the egress table.
//
// What it must never do: leave the site with no announcement while any BGP
// session is established and no uplink of another edge is usable
// (fail-static), or announce to an uplink the ladder says is down, drained
// past its grace or forced down, except under fail-static. Two exceptions
// are deliberate: a restored decision is announced during the startup wait
// (at most startup_wait, never for a forced-down uplink or one without
// carrier) so that a restart costs nothing; and a decommission withdraws
// the site everywhere because an operator asked for exactly that.
package controller

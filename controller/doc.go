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
// What it must never do: leave the site with no announcement while any BGP
// session is established (fail-static), or announce to an uplink the
// ladder says is down, drained past its grace or forced down, except under
// fail-static.
package controller

// Package privilege says which Linux capabilities the daemon needs for a
// configuration and checks that the running process has them, so a daemon
// started without one fails at once with the capability, the reason and the
// fix, instead of failing later (an ICMP probe that cannot open its socket,
// a route that cannot be written) with a bare EPERM.
//
// Needs is pure: it maps a plain description of what the daemon will do
// (Uses, built from the configuration by UsesOf, or by hand for features the
// configuration does not name yet, such as the eBPF NPTv6 backend) to the
// capabilities and reasons. Current reads the process's sets; Check compares.
//
// It must never raise, drop or change a capability, and never decide what the
// daemon does: it only reports what a configuration requires.
package privilege

// Package privilege says which Linux capabilities the daemon needs for a
// configuration and checks that the running process has them, so a daemon
// started without one fails at once with the capability, the reason and the
// fix, instead of failing later (an ICMP probe that cannot open its socket,
// a route that cannot be written) with a bare EPERM.
//
// Needs is pure: it maps a plain description of what the daemon will do
// (Uses, built from the configuration by UsesOf) to the capabilities and
// reasons. internal/e2e runs the daemon with exactly what Needs names
// (internal/lab.DaemonCaps, plus EBPFCaps for the eBPF NPTv6 backend) to
// prove it is enough. Current reads the process's sets; Check compares.
//
// It must never raise, drop or change a capability, and never decide what the
// daemon does: it only reports what a configuration requires.
package privilege

package privilege

import (
	"fmt"
	"strings"
)

// MissingError says which needed capabilities the process lacks, why each
// is needed and how to grant them.
type MissingError struct {
	// Missing are the needs not in the effective set.
	Missing []Need
	// All are every need, for the fix: granting only the missing ones
	// would drop the others under a fresh unit file.
	All []Need
	// Unbounded are the missing capabilities outside the bounding set,
	// which no ambient capability can grant.
	Unbounded []Cap
}

// Error names each missing capability with its reasons, then the fix, for
// example: missing CAP_NET_RAW (ICMP probes on uplinks isp-a, isp-b); run
// with AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW or as root.
func (e *MissingError) Error() string {
	var b strings.Builder
	for i, n := range e.Missing {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "missing %s (%s)", n.Cap, strings.Join(n.Why, "; "))
	}
	var all []string
	for _, n := range e.All {
		all = append(all, n.Cap.String())
	}
	fmt.Fprintf(&b, "; run with AmbientCapabilities=%s or as root", strings.Join(all, " "))
	if len(e.Unbounded) > 0 {
		var names []string
		for _, c := range e.Unbounded {
			names = append(names, c.String())
		}
		fmt.Fprintf(&b, "; %s not in this process's bounding set, so its parent (container runtime, systemd CapabilityBoundingSet=) must allow it first", strings.Join(names, " "))
	}
	return b.String()
}

// Check returns a *MissingError when have's effective set lacks any of
// needs, else nil. A root process with the full set passes whatever it
// needs; a root process without a capability (in a container that dropped
// it) fails like any other.
func Check(needs []Need, have State) error {
	e := &MissingError{All: needs}
	for _, n := range needs {
		if have.Effective.Has(n.Cap) {
			continue
		}
		e.Missing = append(e.Missing, n)
		if !have.Bounding.Has(n.Cap) {
			e.Unbounded = append(e.Unbounded, n.Cap)
		}
	}
	if len(e.Missing) == 0 {
		return nil
	}
	return e
}

// CheckProcess checks that the running process may do what u describes
// (UsesOf of the configuration). It is the daemon's start-up check; the
// returned error is a *MissingError when a capability is missing.
func CheckProcess(u Uses) error {
	have, err := Current()
	if err != nil {
		return err
	}
	return Check(Needs(u, UnprivilegedPortStart()), have)
}

package nptv6

import (
	"context"
	"fmt"
	"slices"
	"strings"

	mhnetns "github.com/multihomed/multihomed/internal/netns"
	"github.com/multihomed/multihomed/routing"
)

// Datapath runs a set of mappings in the kernel. Both backends (EBPF and
// Kernel) implement it.
//
// Contract: Set is declarative and idempotent. It makes the kernel translate
// exactly the given mappings, adding what is missing before removing what is
// no longer wanted, so a mapping present before and after the call never
// stops translating. It returns the mappings really in place when it
// returns, together with any error: on a partial failure the returned state
// tells the caller what to retry. The effect is visible to packets when Set
// returns. Methods are safe for concurrent use; calls are serialised.
type Datapath interface {
	// Set makes the kernel translate exactly ms.
	Set(ctx context.Context, ms []Mapping) ([]Mapping, error)
	// Mappings returns the mappings in place now, read back from the kernel.
	Mappings(ctx context.Context) ([]Mapping, error)
	// Counters returns per-mapping packet and drop counters.
	Counters(ctx context.Context) ([]Counters, error)
	// Close releases the process's handles. Translation keeps running: the
	// kernel objects stay (pinned programs and maps, ip6tables rules), so a
	// restart or an upgrade of the daemon does not interrupt forwarding.
	Close() error
	// Purge removes every kernel object the backend created: after it,
	// nothing is translated.
	Purge(ctx context.Context) error
}

// Counters are the counters of one mapping since it was installed; see
// routing.NPTCounters.
type Counters = routing.NPTCounters

// sortMappings orders mappings by interface, then internal, then external
// prefix, so states compare with slices.Equal.
func sortMappings(ms []Mapping) []Mapping {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Mapping) int {
		if c := strings.Compare(a.Interface, b.Interface); c != 0 {
			return c
		}
		if c := a.Internal.Addr().Compare(b.Internal.Addr()); c != 0 {
			return c
		}
		if c := a.Internal.Bits() - b.Internal.Bits(); c != 0 {
			return c
		}
		if c := a.External.Addr().Compare(b.External.Addr()); c != 0 {
			return c
		}
		return a.External.Bits() - b.External.Bits()
	})
	return ms
}

// SortMappings returns a copy of ms in the order Set and Mappings return
// them: by interface, then internal prefix, then external prefix.
func SortMappings(ms []Mapping) []Mapping { return sortMappings(ms) }

// inNetns runs fn on an OS thread switched into the network namespace at
// path (a file such as /run/netns/edge or /proc/PID/ns/net); with an empty
// path fn runs where the process is. Child processes and sockets created by
// fn belong to that namespace.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	if err := mhnetns.DoPath(path, fn); err != nil {
		return fmt.Errorf("nptv6: %w", err)
	}
	return nil
}

// Log attribute keys used by the datapaths.
const (
	logKeyBackend = "backend"
	logKeyUplink  = "uplink"
	logKeyHook    = "hook"
	logKeyMode    = "mode"
	logKeyMapping = "mapping"
	logKeyChain   = "chain"
	logKeyRule    = "rule"
	logKeyCount   = "count"
)

package config

import (
	"fmt"

	"github.com/multihomed/multihomed/health"
)

// Limits on list lengths. Each is far above real use (a site has a handful
// of prefixes and two to four uplinks) and keeps the cost of validating,
// and of running, any accepted configuration bounded: the API validates
// text from callers with only viewer rights. A list over its limit is
// reported once and only its first entries are checked.
const (
	// MaxSitePrefixes caps site.prefixes.
	MaxSitePrefixes = 256
	// MaxUplinks caps uplinks.
	MaxUplinks = 32
	// MaxTargets caps uplinks[].health.targets; package health owns the
	// number.
	MaxTargets = health.MaxTargets
	// MaxCommunities caps uplinks[].bgp.communities and
	// uplinks[].degraded.communities.
	MaxCommunities = 64
	// MaxLargeCommunities caps uplinks[].bgp.large_communities.
	MaxLargeCommunities = 64
	// MaxIBGPPeers caps ibgp.peers.
	MaxIBGPPeers = 64
	// MaxDNSHosts caps dns.hosts (one UPDATE carries them all).
	MaxDNSHosts = 256
	// MaxProblems caps the problems one validation reports; a last line
	// "... and N more problems" counts the rest.
	MaxProblems = 100
)

// limit reports a list longer than max once, and returns how many of its
// n entries to check.
func (c *checker) limit(path string, n, max int, fix string) int {
	if n <= max {
		return n
	}
	c.add(path, "%d entries, more than the %d allowed; %s (only the first %d were checked)", n, max, fix, max)
	return max
}

// capProblems keeps the first MaxProblems of ps, plus dropped more that were
// never formatted, and says how many were left out.
func capProblems(ps []Problem, dropped int) []Problem {
	if len(ps) > MaxProblems {
		dropped += len(ps) - MaxProblems
		ps = ps[:MaxProblems]
	}
	if dropped > 0 {
		ps = append(ps, Problem{Message: fmt.Sprintf("... and %d more problems", dropped)})
	}
	return ps
}

// Package e2e holds the end-to-end tests: the multihomed binary runs in the
// edge namespace of the namespace lab (package lab) against real FRR and
// BIRD routers, and the tests read the result from the routers themselves.
// The PA tests (pa_test.go) run in the PA variant with BIND 9 and both NPTv6
// backends, and read the result from the internet host (source addresses,
// DNS answers, TCP) and the edge's conntrack table.
// They need root, FRR and BIRD (BIND 9, conntrack and nft for PA); outside
// CI they skip when those are missing.
package e2e

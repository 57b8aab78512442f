// Package e2e holds the end-to-end tests: the multihomed binary runs in the
// edge namespace of the namespace lab (package lab) against real FRR and
// BIRD routers, and the tests read the result from the routers themselves.
// They need root, FRR and BIRD; outside CI they skip when those are missing.
package e2e

// Package netnstest holds the namespace set-up the integration tests of
// several packages share: a namespace that goes when the test ends, a
// command that fails the test, a UDP server inside a namespace, and the LAN -- edge == two uplinks ==
// internet topology the datapath tests (nat44, returnpath) build on.
//
// It is for tests only: every helper fails the test instead of returning
// an error, and registers its clean-up with t.Cleanup so namespaces go
// even when the test fails. Callers check the machine first
// (testenv.Need); this package does not skip.
package netnstest

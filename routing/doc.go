// Package routing holds the plain types that the controller, its appliers
// (bgp, fib) and the API share: what is announced to an uplink, what state
// a BGP session is in, which egress default routes and probe tables exist.
//
// It is a leaf: it imports only the standard library, so that a client
// (mhctl) or a pure function (controller.Decide) can use these types
// without linking GoBGP, netlink or the configuration loader. It must never
// import another package of this module or do I/O.
package routing

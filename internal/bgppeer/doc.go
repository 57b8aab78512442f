// Package bgppeer is a hand-written BGP speaker for tests: it accepts one
// TCP connection, completes the OPEN/KEEPALIVE exchange and then sends
// whatever bytes a test builds, including UPDATEs no real implementation
// would send (malformed path attributes, RFC 7606). It records the
// NOTIFICATION it receives and whether the connection closed.
//
// It is test scaffolding only: it keeps no RIB, answers nothing but
// keepalives, and never dials out. Its builders write the wire format of
// RFC 4271 section 4 by hand on purpose, so a test can get every length
// and flag wrong.
package bgppeer

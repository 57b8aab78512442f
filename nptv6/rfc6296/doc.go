// Package rfc6296 is the NPTv6 arithmetic of RFC 6296 on addresses: a
// Translator compiles one prefix pair (routing.NPTMapping) and maps
// addresses between its internal and external prefix, checksum-neutrally.
//
// It is pure and imports only the standard library and routing, so the
// controller can compute the addresses PA mode publishes in DNS (a pure
// Decide) without linking the datapaths. Package nptv6 builds its packet
// translation (Table) and both kernel datapaths on it and re-exports its
// names. This package's tests are the reference tests of the arithmetic;
// rfc6296test holds the random inputs they share with nptv6's.
//
// It must never do I/O, keep state beyond a Translator's precomputed
// values, or import a datapath.
package rfc6296

// Package rfc6296test holds what the tests of rfc6296 (the address
// arithmetic) and of nptv6 (the packet path and datapaths built on it)
// share: random prefixes and addresses biased toward the words RFC 6296
// treats specially, and a comparison of one's-complement sums.
//
// It is for tests only and imports nothing of this module, so either
// package's tests may use it.
package rfc6296test

// Package depcheck lets a test assert what a package does not link: it
// lists the package's dependencies with `go list -deps` and fails the test
// for each forbidden one. It keeps thin packages thin (mhctl links no
// server code; controller links no datapath, netlink, eBPF or GoBGP).
//
// It is for tests only and runs the go command of the toolchain running
// the test; without one it skips outside CI and fails in CI.
package depcheck

// Package buildinfo says which build of multihomed is running: its version,
// commit and build date, and the Go and GoBGP versions it was built with.
//
// Release builds stamp version, commit and date with the linker
// (-ldflags "-X github.com/multihomed/multihomed/internal/buildinfo.version=v1.2.3 ...",
// see scripts/test-packaging); other builds fall back to what the Go
// toolchain recorded (the module version of `go install ...@v1.2.3`, and the
// vcs.* settings of a build made inside a git checkout with -buildvcs).
// It reads, never writes, and imports nothing of the daemon, so both
// binaries and the metrics can use it.
package buildinfo

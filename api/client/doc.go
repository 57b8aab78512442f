// Package client is what a program needs to talk to the multihomed API
// (api/v1) and nothing more: dialing the unix socket or TLS over TCP,
// the socket's default path, and reading configuration problems out of
// an error status.
//
// It must stay light: it never imports the server package (api), config,
// GoBGP, netlink, viper or Prometheus, so that mhctl links none of them
// (cmd/mhctl's TestThinClient checks this with go list -deps).
package client

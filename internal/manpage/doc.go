// Package manpage is the hidden `gen-man DIR` command that multihomed and
// mhctl share: it writes a man page for every visible command of a cobra
// tree. The package build (packaging/build-deb) calls it; operators read
// the result with man. It must stay light: mhctl imports it, and mhctl
// links neither GoBGP, netlink, viper nor Prometheus.
package manpage

// Command mhctl is the NOC client of multihomed: it reads status and
// events (and, in PA mode, the published DNS records: mhctl dns) and
// drains, overrides, reloads, resets sessions and decommissions
// through the daemon's gRPC API
// (docs/api.md), over the unix socket (--socket) or TCP with TLS and a
// client certificate (--address, --cacert, --cert, --key). It talks only
// gRPC and never touches the kernel or BGP itself; it links only api/client
// and api/v1 (TestThinClient). Those flags default to the first of
// ~/.config/mhctl.yaml and /etc/multihomed/mhctl.yaml (clientconfig.go;
// docs/install.md, "mhctl defaults").
//
// Exit codes: 0 success; 1 other error; 2 bad usage or a request the
// daemon refused as invalid; 3 a configuration with problems (config
// validate, config reload); 4 not authenticated or not permitted; 5 no
// such uplink; 6 the daemon cannot be reached; 7 refused because another
// override is in force.
package main

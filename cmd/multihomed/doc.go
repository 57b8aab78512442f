// Command multihomed is the site's multihoming daemon.
//
//	multihomed run --config /etc/multihomed/multihomed.yaml
//	multihomed config validate /etc/multihomed/multihomed.yaml
//
// run starts the BGP speaker and announces the site prefixes to every
// uplink; SIGHUP reloads the configuration (a configuration that fails
// validation is rejected and the running one stays); SIGTERM or SIGINT stops
// it cleanly. This package only wires the other packages together.
package main

// Package dnsupdate keeps a zone's AAAA records in step with the site's
// usable uplinks in PA mode (DESIGN.md section 1): each published host is
// listed under its internal address translated (RFC 6296) into the PA prefix
// of every usable uplink, and under all of them when none is usable
// (fail-static).
//
// Which addresses each host gets is the controller's decision (its
// desiredDNS, in Decide); this package publishes what it is handed. It owns
// two things:
//   - Updater.Set: a declarative applier that reads what the primary server
//     holds and sends one TSIG-signed RFC 2136 UPDATE whose prerequisites
//     pin what it read, so a concurrent change makes the update fail instead
//     of being overwritten;
//   - Runner: the retry loop, which takes the desired state without blocking
//     its caller and converges with backoff.
//
// It must never read files (the TSIG secret arrives as bytes), never touch
// names outside its configured hosts, and never block the controller loop.
package dnsupdate

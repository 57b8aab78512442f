// Package health probes each uplink through that uplink and turns the noisy
// results into one steady verdict per uplink: unknown, up, degraded or down.
//
// It owns:
//   - the health configuration types of one uplink (Config, Target), their
//     defaults, validation and the compact target form (ParseTarget);
//   - the probers (ICMPv6/ICMP echo, TCP connect, HTTP(S), DNS), whose
//     sockets carry the uplink's firewall mark, may be bound to its device and
//     use its address as source, so a probe leaves through the uplink under
//     test whatever the main routing table prefers;
//   - per-target trackers (rise/fall, sliding window of loss and RTT, the
//     adaptive timeout of RFC 6298) and the per-uplink verdict with
//     hysteresis, judged on probe results alone (carrier, BGP sessions and
//     the hold-down are the controller's);
//   - the scheduler, which probes every target on its interval and, when a
//     probe is lost or late, probes the uplink's targets in a short
//     suspicion burst to confirm or clear the loss quickly (rounds that
//     stop once settled, paid from a per-uplink budget; burst.go);
//   - Monitor, which runs the probes and publishes verdict changes without
//     blocking: a level-triggered signal (Changed) plus an immutable Snapshot.
//
// It must never: program routes or rules (fib/ does, see fib.ProbeTables),
// import netlink, GoBGP or viper, decide what to announce (the controller
// does), or send a probe to an address that is not in its configuration.
package health

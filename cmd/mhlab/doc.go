// Command mhlab runs the namespace lab (DESIGN.md section 6) on this
// machine: ISP-A (FRR), ISP-B (BIRD), a transit router (FRR), an internet
// host and a LAN host, with multihomed in the edge namespace.
//
//	mhlab demo   bring the lab up, show the announcements, cut ISP-A's link,
//	             show the failover at the transit, restore, tear down
//	mhlab up     bring the lab up and keep it until Ctrl-C, with Prometheus
//	             (Debian package) scraping the edge, at --prometheus
//	             (http://127.0.0.1:9090 by default)
//	mhlab two-edge
//	             the two-edge site (docs/deployment.md): a gray failure of
//	             ISP-A moves both directions to edge-2; two-edge-up keeps it
//	mhlab bench  measure failover loss windows (link cut, gray failure) of a
//	             1 kHz flow, fast, fast-doc and default probe profiles, repeated runs;
//	             with --edge multihomed,exabgp,frr the same faults against
//	             ExaBGP's healthcheck and a plain FRR edge, with plots;
//	             --target-delay 40ms puts the probe target 40 ms away
//	mhlab bench cpu  the daemon's CPU at 4 uplinks x 3 targets x 20 Hz;
//	             --bursts compares suspicion bursts on and off, --loss makes
//	             the routers drop packets so that bursts run
//	mhlab bench fulltable  a BIRD feeder sends full tables (--tables
//	             50k/0,200k/1M) to multihomed, BIRD and FRR in turn: time
//	             to accept them, CPU seconds, peak RSS, ratios; then
//	             (unless --failover=false) multihomed with bgp.install and
//	             a second ISP: ISP-A's failure timed until no kernel route
//	             leads through it, nexthop_compat_mode 0 and 1
//	mhlab pa     the PA-mode demo (scripts/demo pa): the published name
//	             resolves via both ISPs, then via ISP-B alone after a cut
//	mhlab pa-bench  PA failover: outbound new-flow failover and DNS
//	             convergence, fast and default profiles, repeated runs
//
// It needs root, FRR and BIRD 2 (BIND 9 for pa and pa-bench), and the multihomed binary (--daemon).
// Everything it creates lives in namespaces named mh<id>*, removed on exit.
package main

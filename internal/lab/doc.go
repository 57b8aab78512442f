// Package lab builds the namespace lab of DESIGN.md section 6: an edge
// namespace for multihomed, ISP-A (FRR), ISP-B (BIRD 2, or FRR), a transit
// router (FRR), an internet host and a LAN host, joined by veth links with
// documentation addresses. Integration tests and the mhlab command share it.
// For mhlab bench it also runs other edge software in the edge namespace
// (Edge: ExaBGP with its healthcheck, a plain FRR edge) under the same
// faults (CompareRun, which checks with ISP-A's and ISP-B's nft counters
// that the flow takes ISP-A before each fault: flowpath.go), and builds a
// wider topology for measuring the cost
// of probing (CPULab: four uplinks, targets behind routers).
//
// UpPA builds the PA variant: the same namespaces without BGP between the
// ISPs and the edge (each ISP routes its PA prefix to the edge statically),
// the LAN on a ULA, and BIND 9 as the zone's primary in a DNS namespace
// behind the transit (pa.go); pa_flows.go has the UDP and TCP helpers the
// PA tests observe the site's addresses with.
//
// UpFullTable builds the full-table bench's pair of namespaces (a BIRD 2
// feeder with a generated table, a receiver namespace where multihomed,
// BIRD and FRR take it in turn: fulltable.go).
//
// UpTranslator builds a second, router-less topology (LAN host, edge, out
// host) for the NPTv6 translator's tests and `nptv6ctl bench`.
//
// Every name it creates carries the caller's unique ID, so several labs can
// run at once; Close removes every namespace, router process and file it
// made, and tests call it from t.Cleanup so that happens even on failure.
// It only ever sends traffic inside the namespaces it created.
//
// Beside the failure scenarios it drives the day-2 ones (DESIGN.md section
// 10): MeasureRestart (a SIGTERM or SIGKILL restart with a flow running and
// the ISPs' RIBs watched by WatchRIB), FlapStorm and Soak, which sample the
// daemon's resources (SampleDaemon, ScrapeMetrics).
package lab

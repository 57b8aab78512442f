// Package delayline adds a fixed one-way delay to the packets a lab
// namespace forwards, for kernels without sch_netem (tc netem), such as
// the CI machines' (kernel 6.18 built without it, and without sch_fq, so
// EDT pacing cannot delay either).
//
// A Line is a TUN device in the namespace plus policy routing: every packet
// that arrives on the chosen interface and is to be forwarded is routed
// into the TUN device (an `ip rule iif DEV lookup TABLE` for IPv6 and IPv4,
// and a table whose default routes point at the device); the Line reads
// it, holds it for the delay in a FIFO queue, and writes it back into the
// device, where the kernel routes it on by the main table. Packets to the
// namespace's own addresses (BGP sessions, neighbour discovery) are
// delivered by the local table before the rule is consulted and are never
// delayed. This is the in-lab stand-in for
// `tc qdisc add dev OUT root netem delay D` on the far side of a router,
// with two differences a test may see: forwarded packets pass the routing
// decision twice, so their hop limit / TTL drops by 2, and the queue holds
// at most Options.Limit packets (further ones are dropped and counted).
// What the kernel itself sends on the device (router solicitations, MLD
// and IGMP reports: multicast and link-local destinations) is discarded.
//
// Lines are for test and lab namespaces only: they change the namespace's
// routing rules and, for IPv4, turn reverse-path filtering off in it.
package delayline

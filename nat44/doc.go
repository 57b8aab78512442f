// Package nat44 is the IPv4 side of PA mode (DESIGN.md section 1): source
// NAT per uplink with nftables, and, on failover, the removal of the
// conntrack entries of flows NATed through the failed uplink so their next
// packets are NATed afresh through the uplink now routed.
//
// It owns one nftables table (ip family, "multihomed_nat44" by default) and
// never reads or changes any other table. Set is declarative: each rule
// carries a key in its user data, so Set compares the kernel's rules with
// the desired ones and changes only the difference, in one atomic netlink
// batch, and sends nothing when they match.
//
// It does not route: which uplink a flow leaves through is the kernel's
// routing (fib/); this package only decides which source address it
// leaves with.
package nat44

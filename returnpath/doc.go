// Package returnpath makes replies of connections that reach a PA-mode site
// through one uplink leave through that same uplink (docs/pa-mode.md,
// "Replies leave by the uplink a connection came in on").
//
// In PA mode the site's address as seen from outside is a translation into
// one ISP's PA prefix, so a reply must leave through the uplink the
// connection arrived on, whatever uplink carries egress: through any other,
// the translator gives it another ISP's prefix and the client drops it.
// The package owns one nftables table (ip6 family, "multihomed_return" by
// default) and never reads or changes any other table. For each uplink it
// remembers the connections opened from outside through that uplink (in a
// dynamic set, keyed by the inside 5-tuple) and gives their replies the
// uplink's firewall mark; the fwmark rule of that uplink's table (fib/)
// routes them out through it.
//
// It does not translate (nptv6/) or route (fib/): it only marks.
package returnpath

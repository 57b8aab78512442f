// Package fib is the only package that programs the kernel's forwarding
// state over netlink: routes and policy rules. It exposes plain types
// (netip.Addr, netip.Prefix) and never lets netlink types out.
//
// The probe part (files probe*.go) owns, per uplink, a firewall mark, a
// routing table holding only that uplink's default route(s) and an `ip rule`
// sending marked packets to that table, so that health probes leave through
// the uplink under test whatever the main table prefers. It also watches
// link carrier for health. Everything it creates carries ProbeRouteProtocol
// so it can find and remove what it owns.
//
// Egress (egress.go) and the probe tables remember what their last Set
// applied (applied.go) and the devices they looked up (links.go): a Set
// asking for the same again makes no netlink call until the caller says
// Invalidate (the controller does on carrier changes and every resync).
//
// Routes (routes.go) installs the routes BGP accepted from full tables into
// a table of their own through kernel nexthop objects, one group per uplink
// and family, so a failed uplink's routes move with one nexthop replace.
// Its routes and nexthops carry their own protocol number. The Installer
// (install.go) feeds it the BGP best paths, removes at start what an
// earlier run left with that protocol, and points each group where the
// site's default egress goes when its uplink stops carrying egress.
//
// It must never: touch a route or rule it did not create (one without
// ProbeRouteProtocol), decide which uplink is healthy (health/ and the
// controller do), or block a netlink subscription callback.
package fib

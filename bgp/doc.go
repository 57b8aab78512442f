// Package bgp is the site's BGP speaker: an embedded GoBGP v4 server holding
// one eBGP session per uplink and address family, announcing the site's own
// prefixes with per-ISP attributes and importing only what each uplink's
// configuration allows.
//
// It is the only package that imports GoBGP. Its API uses netip types and
// its own small structs; GoBGP's protobuf and packet types never leave it.
//
// What it must never do: send a route learned from one ISP to another
// (transit). Global import and export policies default to REJECT and accept
// explicitly: export accepts only locally originated paths for the site's
// prefixes, per uplink, and (ibgp.advertise: full, inside.go) learned routes
// to the core peers only; import accepts our own paths and, per uplink, what
// its import mode (none, default, full) allows after the RFC 7454 / RFC 8212
// filters of DESIGN.md section 8. It never starts GoBGP's unauthenticated
// gRPC listener.
//
// Lifecycle (DESIGN.md section 10): Start opens no session until the first
// SetAnnouncements (bounded by Options.FirstAnnounceWait, which the daemon
// sets to the controller's startup wait plus a margin; the controller makes
// that first call carry what it means to announce), so no ISP sees
// End-of-RIB before the site's prefixes; Stop is a graceful restart, not a
// withdrawal (no Cease where graceful restart was negotiated). A session
// GoBGP closes for max-prefix is held down and reopened after
// max_prefix_restart or on ResetUplink (an operator's reset), never by
// CloseUplink (carrier loss).
//
// Prefix limits are counted here, not by GoBGP (whose check recounts the
// whole Adj-RIB-In after every UPDATE): prefixcount.go keeps each session's
// received and accepted prefixes from the update stream at a constant cost
// per UPDATE and has GoBGP close the session only once it is over;
// importfilter.go says what import accepts, the policy restated in Go.
// While a full table's initial transfer runs, bulkimport.go stops that
// stream (GoBGP charges each of its events with a copy of the peer's
// configuration), guards max-prefix with GoBGP's own count read every
// second or more, and rebuilds the counts with one walk at End-of-RIB.
//
// Announcements travel as marks on the originated paths (exportmarks.go):
// with a full table a change re-originates the one path through an export
// policy that never changes what it does to a path that exists, so nothing
// walks the table; with a small one it is made in place, so the other ISPs
// hear nothing.
//
// Files by job: speaker.go (lifecycle), sessions.go (peers, state watch,
// resets), prefixcount.go (received/accepted counts, the max-prefix
// trigger), importfilter.go (what import accepts), maxprefix.go (max-prefix hold-down), announce.go
// (SetAnnouncements and what it applies), exportmarks.go (the slots and
// marks that carry the announcements), inside.go (full-table routes to
// the core with per-uplink health LOCAL_PREF), reconfigure.go, rib.go (reads),
// policy.go (GoBGP policy objects), sitestate.go and edgepeers.go (the
// uplink states edges of one site exchange over iBGP, docs/deployment.md).
package bgp

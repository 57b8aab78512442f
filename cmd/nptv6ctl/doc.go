// Command nptv6ctl lets an operator inspect and change the NPTv6 (RFC 6296)
// translator by hand, and measures it.
//
//	nptv6ctl [flags] list
//	nptv6ctl [flags] add INTERFACE INTERNAL EXTERNAL [hairpin]
//	nptv6ctl [flags] remove INTERFACE INTERNAL EXTERNAL
//	nptv6ctl [flags] purge
//	nptv6ctl translate INTERNAL EXTERNAL ADDRESS
//	nptv6ctl bench [bench flags]
//
// add and remove read the mappings in place, change one, and hand the whole
// set to the backend's declarative Set, exactly as the daemon does. When the
// daemon runs, it owns the mappings and will undo manual changes on its next
// reconcile: use this tool on hosts without it, or to look.
package main

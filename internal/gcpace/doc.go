// Package gcpace paces the Go garbage collector for a daemon that holds
// full routing tables.
//
// With Go's default (GOGC=100) the collector lets the heap grow to twice
// the live heap before it collects: a process holding a gigabyte of routes
// peaks at more than two gigabytes, and while the table is imported the
// small live heap makes collections frequent. A Pacer turns GOGC off and,
// after every collection, sets the runtime's memory limit from the live
// heap that collection found: the larger of Ratio times the live heap and
// the live heap plus Headroom. It is GOGC at (Ratio-1)*100 with a floor of
// Headroom on what may accrue between collections. The operator's own
// GOGC or GOMEMLIMIT, when set in the environment, win: Start then does
// nothing.
package gcpace

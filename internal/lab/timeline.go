package lab

import "time"

// Timeline is what a flow delivered around one fault, in bins of equal
// width, for plotting.
type Timeline struct {
	// Bin is the width of one bin.
	Bin time.Duration
	// Start is bin 0's start relative to the fault (negative: before it).
	Start time.Duration
	// Healed is when the fault was removed, relative to the fault.
	Healed time.Duration
	// Received counts the packets of each direction (0 inbound, 1
	// outbound, as in Flow) that arrived, by the bin of their sending
	// time (wall clock): at 500 pps a bin of 10 ms holds 5 when nothing
	// was lost and the sender kept its rate.
	Received [2][]int
	// PerBin is how many packets the flow's rate puts in one bin.
	PerBin int
}

// Interval is the flow's packet interval.
func (f *Flow) Interval() time.Duration { return f.interval }

// Command mhflow is the container lab's flow meter: run it on two hosts at
// once, each pointing at the other, and each reports the loss window of
// the direction it received (internal/flowmeter).
//
//	mhflow --bind '[2001:db8:9000:1::10]:9' --peer '[2001:db8:face:1::10]:9' --for 20s
//
// It sends one 64-byte UDP packet per --interval to --peer only, for --for,
// then waits --linger for late packets and prints one line:
//
//	mhflow: received from [2001:db8:face:1::10]:9: sent 20000 received 19880 lost 120, loss window 118ms
//
// The report covers the packets up to the highest sequence number that
// arrived (the receiver cannot know how many the peer sent after that).
package main

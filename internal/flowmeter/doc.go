// Package flowmeter measures the loss window of a failover: a sender puts a
// sequence number in every UDP packet at a fixed interval, a receiver
// records which arrived, and the report gives the longest run of missing
// packets. The namespace lab (internal/lab), the container lab (cmd/mhflow)
// and the bench share it. It sends only to the address it is given.
package flowmeter

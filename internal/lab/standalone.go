package lab

import (
	"context"
	"net/netip"

	"github.com/multihomed/multihomed/internal/netns"
)

// StartFRR starts FRR (zebra and bgpd with bgpdConf) inside ns, for a test
// that builds its own small topology around one router instead of Up's.
// Close it (and then ns) when done.
func StartFRR(ctx context.Context, ns *netns.NS, bgpdConf string) (*FRR, error) {
	return startFRR(ctx, ns, bgpdConf)
}

// StartBIRD starts BIRD 2 with conf inside ns; proto maps each neighbor to
// its protocol name, for Session and Received. Close it when done.
func StartBIRD(ctx context.Context, ns *netns.NS, conf string, proto map[netip.Addr]string) (*BIRD, error) {
	return startBIRD(ctx, ns, conf, proto)
}

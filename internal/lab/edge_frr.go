package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FRREdge runs a plain FRR edge (zebra and bgpd) in the edge namespace:
// sessions with both ISPs, the site prefixes announced to both (ISP-B's
// with one prepend, as multihomed's ScenarioConfig does), the ISPs'
// defaults accepted and installed in the kernel by zebra, ISP-A's preferred
// (local-preference 200) so that it carries the traffic while healthy. No
// health checks: it reacts to what BGP and the link tell it.
type FRREdge struct {
	l *Lab
	f *FRR
}

// NewFRREdge prepares an FRR edge for l.
func NewFRREdge(l *Lab) *FRREdge { return &FRREdge{l: l} }

// Name implements Edge.
func (e *FRREdge) Name() string { return "frr" }

// frrEdgePolicy prefers ISP-A's default and prepends once toward ISP-B.
const frrEdgePolicy = `route-map ISP-A-IN permit 10
 set local-preference 200
route-map ISP-B-OUT permit 10
 set as-path prepend 64500
router bgp 64500
 address-family ipv6 unicast
  neighbor %[1]s route-map ISP-A-IN in
  neighbor %[2]s route-map ISP-B-OUT out
 exit-address-family
 address-family ipv4 unicast
  neighbor %[3]s route-map ISP-A-IN in
  neighbor %[4]s route-map ISP-B-OUT out
 exit-address-family
`

// Config returns the edge's bgpd configuration.
func (e *FRREdge) Config() string {
	return frrBGPConf(ASNEdge, EdgeLANAddr4, []frrNeighbor{
		{addr: ISPAAddr6, asn: ASNISPA}, {addr: ISPAAddr4, asn: ASNISPA},
		{addr: ISPBAddr6, asn: ASNISPB}, {addr: ISPBAddr4, asn: ASNISPB},
	}, []string{SitePrefix6.String(), SitePrefix4.String()},
		fmt.Sprintf(frrEdgePolicy, ISPAAddr6, ISPBAddr6, ISPAAddr4, ISPBAddr4))
}

// Start implements Edge.
func (e *FRREdge) Start(ctx context.Context) error {
	f, err := startFRR(ctx, e.l.Edge, e.Config())
	if err != nil {
		return err
	}
	e.f = f
	return nil
}

// Restart implements Edge: SIGTERM to bgpd and zebra (what `systemctl
// restart frr` does; zebra removes its routes from the kernel as it
// exits), then Start.
func (e *FRREdge) Restart(ctx context.Context) error {
	if e.f != nil {
		if err := e.f.terminate(10 * time.Second); err != nil {
			return err
		}
	}
	return e.Start(ctx)
}

// terminate sends SIGTERM to bgpd, then zebra, waiting for each to exit,
// and removes the instance's files.
func (f *FRR) terminate(timeout time.Duration) error {
	for _, d := range []string{"bgpd", "zebra"} {
		data, err := os.ReadFile(filepath.Join(f.runDir, d+".pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(timeout)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				return fmt.Errorf("lab: frr %s %s did not exit within %s of SIGTERM; killed", f.ns.Name, d, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	f.Close()
	return nil
}

// Repair implements Edge: zebra re-learns everything itself.
func (e *FRREdge) Repair(context.Context) error { return nil }

// Log implements Edge.
func (e *FRREdge) Log() string {
	if e.f == nil {
		return ""
	}
	return e.f.Log()
}

// Stop implements Edge.
func (e *FRREdge) Stop() {
	if e.f != nil {
		e.f.Close()
		e.f = nil
	}
}

package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/netns"
)

// CPULab is the topology for measuring the cost of probing (mhlab bench
// cpu): an edge namespace with n uplinks, each a veth to a router
// namespace with a target host namespace behind it that answers on
// several addresses. The routers run no BGP: the edge's sessions are
// refused, the same for every daemon measured, and the probes' routes
// (the uplink's gateway) do not depend on them.
type CPULab struct {
	Edge    *netns.NS
	Uplinks []CPUUplink
	routers []*netns.NS
	nss     []*netns.NS
}

// CPUUplink is one uplink of a CPULab.
type CPUUplink struct {
	// Dev is the edge's device, Gateway the router's address on it and
	// Local the edge's.
	Dev            string
	Gateway, Local netip.Addr
	// Targets are the target host's addresses, one hop behind the router.
	Targets []netip.Addr
}

// cpuUplinkPrefix is uplink i's space: 2001:db8:c<i>00::/56, the edge link
// ...:1::/64, the target link ...:2::/64.
func cpuUplinkAddr(i, link, host int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("2001:db8:c%d00:%d::%x", i+1, link, host))
}

// UpCPULab builds a CPULab with uplinks uplinks of targets targets each.
// Names carry id; Close removes everything.
func UpCPULab(ctx context.Context, id string, uplinks, targets int) (c *CPULab, err error) {
	c = &CPULab{}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	mk := func(name string) (*netns.NS, error) {
		n, err := netns.New(ctx, "mh"+id+name)
		if err == nil {
			c.nss = append(c.nss, n)
		}
		return n, err
	}
	if c.Edge, err = mk("ce"); err != nil {
		return c, err
	}
	for i := range uplinks {
		r, err := mk(fmt.Sprintf("r%d", i+1))
		if err != nil {
			return c, err
		}
		c.routers = append(c.routers, r)
		h, err := mk(fmt.Sprintf("h%d", i+1))
		if err != nil {
			return c, err
		}
		u := CPUUplink{Dev: fmt.Sprintf("up%d", i+1), Gateway: cpuUplinkAddr(i, 1, 1), Local: cpuUplinkAddr(i, 1, 2)}
		if err := netns.Veth(ctx, c.Edge, u.Dev, r, "eth-edge"); err != nil {
			return c, err
		}
		if err := netns.Veth(ctx, r, "eth-h", h, "eth0"); err != nil {
			return c, err
		}
		for _, a := range []struct {
			ns   *netns.NS
			dev  string
			addr netip.Addr
		}{{c.Edge, u.Dev, u.Local}, {r, "eth-edge", u.Gateway}, {r, "eth-h", cpuUplinkAddr(i, 2, 1)}} {
			if err := a.ns.AddAddr(ctx, a.dev, netip.PrefixFrom(a.addr, 64)); err != nil {
				return c, err
			}
		}
		for t := range targets {
			addr := cpuUplinkAddr(i, 2, 0x10+t)
			if err := h.AddAddr(ctx, "eth0", netip.PrefixFrom(addr, 64)); err != nil {
				return c, err
			}
			u.Targets = append(u.Targets, addr)
		}
		if _, err := h.Run(ctx, "ip", "-6", "route", "add", "default", "via", cpuUplinkAddr(i, 2, 1).String()); err != nil {
			return c, err
		}
		c.Uplinks = append(c.Uplinks, u)
	}
	return c, nil
}

// Config renders a multihomed configuration for the CPULab's edge:
// every uplink probes its targets over ICMPv6 every interval (timeout
// 200 ms) when probes is set, and has no health block otherwise; noBursts
// turns suspicion bursts off (`no_bursts: true`). Its state and API socket
// go into dir, so that several daemons can run at once.
func (c *CPULab) Config(probes bool, interval time.Duration, noBursts bool, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile: lab\nnode:\n  router_id: %s\n  asn: %d\nsite:\n  prefixes:\n    - %s\nuplinks:\n", EdgeLANAddr4, ASNEdge, SitePrefix6)
	for i, u := range c.Uplinks {
		fmt.Fprintf(&b, "  - name: up%d\n    interface: %s\n    bgp:\n      peer_asn: %d\n      neighbor: \"%s\"\n      local_address: \"%s\"\n      connect_retry: 5s\n",
			i+1, u.Dev, ASNISPA+i, u.Gateway, u.Local)
		if !probes {
			continue
		}
		var ts []string
		for _, t := range u.Targets {
			ts = append(ts, fmt.Sprintf("\"icmp://%s\"", t))
		}
		fmt.Fprintf(&b, "    health:\n      interval: %s\n      timeout: 200ms\n      targets: [%s]\n", interval, strings.Join(ts, ", "))
		if noBursts {
			b.WriteString("      no_bursts: true\n")
		}
	}
	fmt.Fprintf(&b, "controller:\n  state_dir: %s\napi:\n  socket: %s\n", filepath.Join(dir, "state"), filepath.Join(dir, "api.sock"))
	return b.String()
}

// Loss makes every router drop percent of the packets it forwards, at
// random (nftables), so that probes get lost and start suspicion bursts.
func (c *CPULab) Loss(ctx context.Context, percent int) error {
	rule := fmt.Sprintf("numgen random mod 100 < %d drop", percent)
	if percent >= 100 {
		rule = "drop" // numgen's values stop at 99
	}
	for _, r := range c.routers {
		if err := nftForward(ctx, r, rule); err != nil {
			return err
		}
	}
	return nil
}

// TxPackets returns the packets the edge has sent on every uplink device
// (its probes, and the few of neighbour discovery and BGP connects).
func (c *CPULab) TxPackets(ctx context.Context) (uint64, error) {
	var n uint64
	for _, u := range c.Uplinks {
		_, tx, err := linkPackets(ctx, c.Edge, u.Dev)
		if err != nil {
			return 0, err
		}
		n += tx
	}
	return n, nil
}

// Close removes every namespace. Safe to call twice.
func (c *CPULab) Close() {
	for i := len(c.nss) - 1; i >= 0; i-- {
		_ = c.nss[i].Close()
	}
	c.nss = nil
}

// ClockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU
// times: 100 on every Linux architecture Go supports.
const ClockTick = 100

// ProcessCPU returns the user and system CPU time pid has used, from
// /proc/<pid>/stat (fields 14 and 15, in ClockTick units).
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("lab: cpu of %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces: fields count from the
	// closing parenthesis.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("lab: cpu of %d: short /proc stat %q", pid, s)
	}
	var ticks int64
	for _, x := range f[11:13] { // utime, stime: fields 14, 15 overall
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("lab: cpu of %d: %q: %w", pid, x, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / ClockTick, nil
}

package nat44

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/ti-mo/conntrack"
)

// FlushUplink deletes the conntrack entries of flows NATed through device:
// entries with source NAT whose original source is inside one of device's
// rules and whose reply goes to the address that rule translates to (its
// Source, or for masquerade any IPv4 address device has now). It returns
// how many it deleted.
//
// Why: conntrack pins a flow's translation for the flow's life. After the
// routes moved to another uplink, the flow's next packets would still leave
// with the failed uplink's address (through the new uplink, where the
// ISP's anti-spoofing filter drops them, or the replies return to the dead
// uplink) and hang until the entry times out (UDP: 30 s unreplied, 2 min
// once replied; established TCP: 5 days). Without the entry, the next
// packet starts a new one and is NATed by the new uplink's rule. Call it
// after the routes moved, or packets in between recreate entries through
// the failed uplink.
//
// The kernel already drops masqueraded entries when the device goes down or
// loses its address; FlushUplink is for the failures it cannot see (gray
// failure, probes failing on a link that is up) and for explicit SNAT.
// Entries of a device with no rule: nothing to delete.
func (n *NAT) FlushUplink(ctx context.Context, device string) (int, error) {
	rules, err := n.Rules()
	if err != nil {
		return 0, err
	}
	var mine []Rule
	for _, r := range rules {
		if r.Device == device {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		return 0, nil
	}
	deleted := 0
	err = n.inNetns(func() error {
		targets, err := natTargets(mine)
		if err != nil {
			return err
		}
		c, err := conntrack.Dial(nil)
		if err != nil {
			return fmt.Errorf("nat44: open conntrack netlink: %w", err)
		}
		defer c.Close()
		// A dump of the whole table: ctnetlink's kernel-side filters match
		// on marks and zones, not on a reply address.
		flows, err := c.Dump(nil)
		if err != nil {
			return fmt.Errorf("nat44: dump conntrack: %w", err)
		}
		for _, f := range flows {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !natedThrough(f, targets) {
				continue
			}
			// ENOENT: the entry expired or was deleted since the dump.
			if err := c.Delete(f); err != nil && !errors.Is(err, syscall.ENOENT) {
				return fmt.Errorf("nat44: delete conntrack entry %s: %w", f.TupleOrig, err)
			}
			deleted++
		}
		return nil
	})
	if err != nil {
		return deleted, fmt.Errorf("nat44: flush flows NATed through %s: %w", device, err)
	}
	n.log.Info("nat44: flushed conntrack entries", logKeyUplink, device, logKeyCount, deleted)
	return deleted, nil
}

// natTarget is one (inside prefix, translated address) pair of a device.
type natTarget struct {
	inside netip.Prefix
	to     netip.Addr
}

// natTargets lists what the rules translate to; masquerade rules expand to
// the device's IPv4 addresses, read in the current namespace.
func natTargets(rules []Rule) ([]natTarget, error) {
	var out []natTarget
	for _, r := range rules {
		if !r.Masquerade() {
			out = append(out, natTarget{r.Inside, r.Source})
			continue
		}
		addrs, err := deviceAddrs(r.Device)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			out = append(out, natTarget{r.Inside, a})
		}
	}
	return out, nil
}

func deviceAddrs(device string) ([]netip.Addr, error) {
	ifi, err := net.InterfaceByName(device)
	if err != nil {
		// A device that is gone took its masqueraded entries with it.
		return nil, nil
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("nat44: addresses of %s: %w", device, err)
	}
	var out []netip.Addr
	for _, a := range as {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

// natedThrough reports whether f was source-NATed by one of targets: its
// original source is inside the prefix and replies come back to the
// translated address.
func natedThrough(f conntrack.Flow, targets []natTarget) bool {
	if !f.Status.SrcNAT() {
		return false
	}
	src, back := f.TupleOrig.IP.SourceAddress.Unmap(), f.TupleReply.IP.DestinationAddress.Unmap()
	for _, t := range targets {
		if t.inside.Contains(src) && back == t.to {
			return true
		}
	}
	return false
}

package lab

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/multihomed/multihomed/internal/delayline"
	"github.com/multihomed/multihomed/internal/netns"
)

// Fault scenarios of DESIGN.md section 6, applied to ISP-A.

// CutISPA takes the edge's link to ISP-A down (carrier loss on both ends).
func (l *Lab) CutISPA(ctx context.Context) error {
	_, err := l.Edge.Run(ctx, "ip", "link", "set", "eth-a", "down")
	return err
}

// RestoreISPA brings the edge's link to ISP-A back up.
func (l *Lab) RestoreISPA(ctx context.Context) error {
	_, err := l.Edge.Run(ctx, "ip", "link", "set", "eth-a", "up")
	return err
}

// GrayFailISPA makes ISP-A's router drop every forwarded packet while its
// own BGP sessions stay up: only end-to-end probes can see it.
func (l *Lab) GrayFailISPA(ctx context.Context) error {
	return l.nftISPA(ctx, "drop")
}

// DegradeISPA makes ISP-A's router drop percent of forwarded packets at
// random.
func (l *Lab) DegradeISPA(ctx context.Context, percent int) error {
	return l.nftISPA(ctx, fmt.Sprintf("numgen random mod 100 < %d drop", percent))
}

// HealISPA removes a gray failure or degradation.
func (l *Lab) HealISPA(ctx context.Context) error {
	_, err := l.ISPA.Run(ctx, "nft", "delete", "table", "inet", "mhfault")
	return err
}

func (l *Lab) nftISPA(ctx context.Context, rule string) error {
	return nftForward(ctx, l.ISPA, rule)
}

// nftForward replaces the router's fault table with one forward rule.
func nftForward(ctx context.Context, ns *netns.NS, rule string) error {
	_, _ = ns.Run(ctx, "nft", "delete", "table", "inet", "mhfault")
	for _, args := range [][]string{
		{"nft", "add", "table", "inet", "mhfault"},
		{"nft", "add", "chain", "inet", "mhfault", "mhforward", "{ type filter hook forward priority 0; policy accept; }"},
		append([]string{"nft", "add", "rule", "inet", "mhfault", "mhforward"}, strings.Fields(rule)...),
	} {
		if _, err := ns.Run(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// DelayISPA makes ISP-A's router hold every packet it forwards from the
// edge for d before sending it on (toward the transit): the edge's probes
// and the site's outbound traffic through ISP-A see d more round-trip
// time. It uses a delay line (internal/delayline), which works on kernels
// without sch_netem. Calling it again changes the delay.
func (l *Lab) DelayISPA(ctx context.Context, d time.Duration) error {
	return l.setDelay(ctx, &l.delay, l.ISPA, "eth-edge", d)
}

// DelayTargets puts the internet host, the probe target of every
// ScenarioConfig profile and of the other edges' health checks, d further
// away: the transit holds everything the host sends (echo replies, the
// inbound half of a flow) for d before routing it on, the way the health
// package's detection bench puts its targets far away (a delay line on the
// replies). The delay is in place until Close; calling it again changes
// it. Set it before the edge starts, so that probe timeouts are learnt at
// that distance, and give the edge ScenarioConfigAt's RTT thresholds (the
// multihomed edge takes them from TargetDelay).
func (l *Lab) DelayTargets(ctx context.Context, d time.Duration) error {
	if err := l.setDelay(ctx, &l.targetDelay, l.Transit, "eth-inet", d); err != nil {
		return err
	}
	l.mu.Lock()
	l.targetDist = d
	l.mu.Unlock()
	return nil
}

// TargetDelay is the delay DelayTargets set, 0 if none (ScenarioConfigAt
// takes it).
func (l *Lab) TargetDelay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.targetDist
}

// setDelay starts a delay line of d on what ns forwards from iif, or
// changes the delay of the one *line already holds.
func (l *Lab) setDelay(ctx context.Context, line **delayline.Line, ns *netns.NS, iif string, d time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *line != nil {
		return (*line).SetDelay(d)
	}
	started, err := delayline.Start(ctx, ns, iif, d, delayline.Options{})
	if err != nil {
		return err
	}
	*line = started
	return nil
}

// UndelayISPA removes ISP-A's added delay, if any.
func (l *Lab) UndelayISPA(ctx context.Context) error {
	return l.closeDelay(&l.delay)
}

// closeDelay removes the delay line *line holds, if any.
func (l *Lab) closeDelay(line **delayline.Line) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if *line == nil {
		return nil
	}
	err := (*line).Close()
	*line = nil
	return err
}

// DegradeISPB is DegradeISPA for ISP-B.
func (l *Lab) DegradeISPB(ctx context.Context, percent int) error {
	return nftForward(ctx, l.ISPB, fmt.Sprintf("numgen random mod 100 < %d drop", percent))
}

// HealISPB removes ISP-B's degradation.
func (l *Lab) HealISPB(ctx context.Context) error {
	_, err := l.ISPB.Run(ctx, "nft", "delete", "table", "inet", "mhfault")
	return err
}

// FlapISPA applies fault and heal to ISP-A n times, holding each state for
// period, and leaves it healed. With CutISPA/RestoreISPA it flaps the link;
// with GrayFailISPA/HealISPA it flaps forwarding while BGP stays up.
func (l *Lab) FlapISPA(ctx context.Context, fault, heal func(context.Context) error, n int, period time.Duration) error {
	for i := 0; i < n; i++ {
		if err := fault(ctx); err != nil {
			return err
		}
		if err := sleepCtx(ctx, period); err != nil {
			return err
		}
		if err := heal(ctx); err != nil {
			return err
		}
		if err := sleepCtx(ctx, period); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

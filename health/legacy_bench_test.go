package health

// The probing path as it was before the CPU work (commit 04772ce), kept
// only as the same-run baseline of BenchmarkMonitorCPU. Do not use it
// elsewhere.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Protocol numbers for icmp.ParseMessage.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

var legacyProbes atomic.Uint64

func legacyProbeCount() uint64 { return legacyProbes.Swap(0) }

// runLegacy probes like the old Monitor.Run until ctx is done: a goroutine
// and ticker per target, a context with timeout per probe, and on every
// result the tracker update, the evaluation and the reason text.
func runLegacy(ctx context.Context, uplinks []Uplink) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var sink string
	for _, u := range uplinks {
		ut := newUplinkTracker(u.Name, u.Device, u.Health)
		for _, tt := range ut.targets {
			p := newLegacyICMPProber(pin{dst: mustAddr("::1")})
			wg.Go(func() {
				defer p.Close()
				tk := time.NewTicker(tt.target.Interval)
				defer tk.Stop()
				for {
					pctx, cancel := context.WithTimeout(ctx, tt.target.Timeout)
					rtt, err := p.Probe(pctx)
					cancel()
					if ctx.Err() != nil {
						return
					}
					legacyProbes.Add(1)
					mu.Lock()
					tt.observe(time.Now(), rtt, err, false)
					ut.evaluate(time.Now())
					sink = ut.reasonText() // the old evaluate formatted it every time
					mu.Unlock()
					select {
					case <-ctx.Done():
						return
					case <-tk.C:
					}
				}
			})
		}
	}
	wg.Wait()
	_ = sink
}

type legacyICMPProber struct {
	pin    pin
	id     uint16
	seq    uint16
	cookie [8]byte

	conn *net.IPConn
	wbuf []byte
	rbuf []byte
}

func newLegacyICMPProber(p pin) *legacyICMPProber {
	ip := &legacyICMPProber{pin: p, id: uint16(nextEchoID.Add(1)), rbuf: make([]byte, 1500)}
	_, _ = rand.Read(ip.cookie[:])
	return ip
}

func (p *legacyICMPProber) open() error {
	src, err := p.pin.source()
	if err != nil {
		return err
	}
	network := "ip6:ipv6-icmp"
	if p.pin.dst.Is4() {
		network = "ip4:icmp"
	}
	laddr := ""
	if src.IsValid() {
		laddr = src.String()
	}
	lc := net.ListenConfig{Control: p.pin.control}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return fmt.Errorf("open ICMP socket: %w", err)
	}
	c := pc.(*net.IPConn)
	if !p.pin.dst.Is4() {
		// Let only echo replies up to this socket: a raw ICMPv6 socket would
		// otherwise wake for every neighbour discovery packet.
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		if err := ipv6.NewPacketConn(c).SetICMPFilter(&f); err != nil {
			_ = c.Close()
			return fmt.Errorf("set ICMPv6 filter: %w", err)
		}
	}
	p.conn = c
	return nil
}

// Probe sends one echo request and waits for its reply.
func (p *legacyICMPProber) Probe(ctx context.Context) (time.Duration, error) {
	if p.conn == nil {
		if err := p.open(); err != nil {
			return 0, err
		}
	}
	p.seq++
	var typ icmp.Type = ipv6.ICMPTypeEchoRequest
	if p.pin.dst.Is4() {
		typ = ipv4.ICMPTypeEcho
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(p.id), Seq: int(p.seq), Data: p.cookie[:]}}
	// For ICMPv6 the kernel fills in the checksum (it needs the pseudo-header).
	wb, err := msg.Marshal(nil)
	if err != nil {
		return 0, fmt.Errorf("marshal echo: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = p.conn.SetReadDeadline(dl)
	} else {
		_ = p.conn.SetReadDeadline(time.Time{})
	}
	c := p.conn // the old code read p.conn here, which could be nil after Close
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()

	start := time.Now()
	dst := &net.IPAddr{IP: p.pin.dst.AsSlice()}
	if _, err := p.conn.WriteTo(wb, dst); err != nil {
		// The device or address may have gone: reopen next time.
		_ = p.conn.Close()
		p.conn = nil
		return 0, fmt.Errorf("send echo to %v: %w", p.pin.dst, err)
	}
	proto := protoICMPv6
	if p.pin.dst.Is4() {
		proto = protoICMP
	}
	for {
		n, from, err := p.conn.ReadFrom(p.rbuf)
		if err != nil {
			return 0, fmt.Errorf("echo %v seq %d: %w", p.pin.dst, p.seq, deadlineErr(err, start))
		}
		if p.matches(proto, p.rbuf[:n], from) {
			return time.Since(start), nil
		}
	}
}

func (p *legacyICMPProber) matches(proto int, b []byte, from net.Addr) bool {
	ipa, ok := from.(*net.IPAddr)
	if !ok {
		return false
	}
	a, ok := netip.AddrFromSlice(ipa.IP)
	if !ok || a.Unmap() != p.pin.dst {
		return false
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || (m.Type != ipv6.ICMPTypeEchoReply && m.Type != ipv4.ICMPTypeEchoReply) {
		return false
	}
	e, ok := m.Body.(*icmp.Echo)
	return ok && e.ID == int(p.id) && e.Seq == int(p.seq) && bytes.Equal(e.Data, p.cookie[:])
}

// Close closes the socket.
func (p *legacyICMPProber) Close() error {
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	return err
}

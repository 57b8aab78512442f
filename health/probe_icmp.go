package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ICMP message types and the layout of an echo message (RFC 792, RFC 4443
// section 4): type, code, checksum, identifier, sequence, then our cookie.
const (
	icmpv4EchoRequest = 8
	icmpv4EchoReply   = 0
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	echoHeaderLen     = 8
	echoLen           = echoHeaderLen + 8 // header + cookie
)

// nextEchoID hands every ICMP prober of the process its own identifier, so
// that probers sharing the kernel's raw-socket fan-out (each raw socket sees
// every echo reply) never take each other's replies.
var nextEchoID atomic.Uint32

func init() {
	var b [2]byte
	_, _ = rand.Read(b[:])
	nextEchoID.Store(uint32(binary.BigEndian.Uint16(b[:])))
}

// errInterrupted is returned by a probe cut short by interrupt: the Monitor
// is stopping, and the result says nothing about the path.
var errInterrupted = errors.New("probe interrupted")

// icmpProber sends echo requests on a raw socket it keeps open between
// probes. A reply counts only if it comes from the target with this
// prober's identifier, the probe's sequence number and this prober's random
// payload cookie.
//
// The socket is connected to the target, so the kernel delivers it only
// packets from the target, and carries a classic BPF filter that accepts
// only echo replies with this prober's identifier. Without both, every raw
// socket of the process is woken for every echo reply the host receives
// (the kernel hands a copy to each raw socket of the protocol): with 12
// targets that is 12 reads, parses and discards per reply, which was most
// of the Monitor's CPU time.
//
// Probe and probeUntil are used by one goroutine at a time; interrupt and
// Close may be called from another. The Monitor uses neither: it sends with
// sendEcho and reads replies with readEchoes (see there).
type icmpProber struct {
	pin    pin
	id     uint16
	seq    uint16
	cookie [8]byte
	wbuf   [echoLen]byte
	rbuf   []byte
	// skipped counts packets read that were not the awaited reply (stale
	// replies of earlier probes, or another prober's if the filter failed);
	// tests read it.
	skipped atomic.Uint64
	// sentAt is when sendEcho last sent, in monoNow nanoseconds; the
	// socket's reader reads it.
	sentAt atomic.Int64

	// mu guards conn and stopped against interrupt and Close; the probing
	// goroutine reads conn without it while it owns the probe.
	mu      sync.Mutex
	conn    *net.IPConn
	stopped bool
}

func newICMPProber(p pin) *icmpProber {
	ip := &icmpProber{pin: p, id: uint16(nextEchoID.Add(1)), rbuf: make([]byte, 1500)}
	_, _ = rand.Read(ip.cookie[:])
	return ip
}

// echoFilter returns the socket filter accepting only echo replies with
// identifier id. An IPv6 raw socket's filter sees the ICMPv6 message; an
// IPv4 one sees the IP header first (its length in the low nibble of byte 0).
func echoFilter(v4 bool, id uint16) ([]bpf.RawInstruction, error) {
	var prog []bpf.Instruction
	if v4 {
		prog = []bpf.Instruction{
			bpf.LoadMemShift{Off: 0}, // X = IPv4 header length
			bpf.LoadIndirect{Off: 0, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv4EchoReply, SkipFalse: 3},
			bpf.LoadIndirect{Off: 4, Size: 2},
		}
	} else {
		prog = []bpf.Instruction{
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpv6EchoReply, SkipFalse: 3},
			bpf.LoadAbsolute{Off: 4, Size: 2},
		}
	}
	prog = append(prog,
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(id), SkipFalse: 1},
		bpf.RetConstant{Val: 0xffff}, // accept (up to 64 KiB)
		bpf.RetConstant{Val: 0},      // drop
	)
	return bpf.Assemble(prog)
}

func (p *icmpProber) open() (*net.IPConn, error) {
	src, err := p.pin.source()
	if err != nil {
		return nil, err
	}
	network := "ip6:ipv6-icmp"
	if p.pin.dst.Is4() {
		network = "ip4:icmp"
	}
	prog, err := echoFilter(p.pin.dst.Is4(), p.id)
	if err != nil {
		return nil, fmt.Errorf("build ICMP socket filter: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	control := func(network, address string, rc syscall.RawConn) error {
		if err := p.pin.control(network, address, rc); err != nil {
			return err
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			// The type filter is checked before the kernel clones a packet
			// for each raw socket, so other ICMP traffic (our own echo
			// requests on loopback, neighbour discovery) costs no copy; the
			// BPF program, run after the clone, then keeps only our
			// identifier.
			if serr = setEchoReplyOnly(int(fd), p.pin.dst.Is4()); serr != nil {
				return
			}
			serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog)
		})
		if err == nil && serr != nil {
			err = fmt.Errorf("set ICMP socket filter: %w", serr)
		}
		return err
	}
	d := net.Dialer{Control: control}
	if src.IsValid() {
		d.LocalAddr = &net.IPAddr{IP: src.AsSlice()}
	}
	// The filter is attached before connect, which sends nothing but makes
	// the kernel drop packets from other sources before they reach this
	// socket.
	nc, err := d.Dial(network, p.pin.dst.String())
	if err != nil {
		return nil, fmt.Errorf("open ICMP socket: %w", err)
	}
	c := nc.(*net.IPConn)
	// Packets queued between socket() and the filter's attachment passed
	// no filter: discard them.
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Read(func(fd uintptr) bool {
			for {
				if _, _, err := unix.Recvfrom(int(fd), p.rbuf, unix.MSG_DONTWAIT); err != nil {
					return true
				}
			}
		})
	}
	return c, nil
}

// setEchoReplyOnly sets the kernel's ICMP type filter of a raw socket
// (ICMP_FILTER, ICMPV6_FILTER; a set bit blocks a type) to let only echo
// replies through.
func setEchoReplyOnly(fd int, v4 bool) error {
	if v4 {
		if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, int(^uint32(1<<icmpv4EchoReply))); err != nil {
			return fmt.Errorf("set ICMP type filter: %w", err)
		}
		return nil
	}
	var f [8]uint32 // struct icmp6_filter
	for i := range f {
		f[i] = ^uint32(0)
	}
	f[icmpv6EchoReply>>5] &^= 1 << (icmpv6EchoReply & 31)
	b := make([]byte, 0, 32)
	for _, w := range f {
		b = binary.NativeEndian.AppendUint32(b, w)
	}
	if err := unix.SetsockoptString(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, string(b)); err != nil {
		return fmt.Errorf("set ICMPv6 type filter: %w", err)
	}
	return nil
}

// Probe sends one echo request and waits for its reply, until ctx is done.
func (p *icmpProber) Probe(ctx context.Context) (time.Duration, error) {
	dl, _ := ctx.Deadline()
	woke := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { p.wake(); close(woke) })
	defer func() {
		// A wake-up still running must not cut the next probe short.
		if !stop() {
			<-woke
		}
	}()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return p.probe(dl)
}

// probeUntil is Probe with a deadline instead of a context: the Monitor's
// path, which saves a context, a timer and a goroutine per probe. interrupt
// ends it early.
func (p *icmpProber) probeUntil(deadline time.Time) (time.Duration, error) {
	return p.probe(deadline)
}

// interrupt makes the running probe, and every later one, return at once.
func (p *icmpProber) interrupt() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.conn != nil {
		_ = p.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// wake makes the running probe return at once (its context is done).
func (p *icmpProber) wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func (p *icmpProber) probe(deadline time.Time) (time.Duration, error) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return 0, errInterrupted
	}
	c := p.conn
	p.mu.Unlock()
	if c == nil {
		var err error
		if c, err = p.open(); err != nil {
			return 0, err
		}
		p.mu.Lock()
		if p.stopped { // interrupted or closed while opening
			p.mu.Unlock()
			_ = c.Close()
			return 0, errInterrupted
		}
		p.conn = c
		p.mu.Unlock()
	}
	// Set the deadline before checking for an interrupt that may have
	// raced with it: interrupt sets stopped before its own deadline, so one
	// of the two is seen.
	_ = c.SetReadDeadline(deadline)
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if stopped {
		return 0, errInterrupted
	}

	p.seq++
	v4 := p.pin.dst.Is4()
	b := p.echoRequest(p.seq)
	start := time.Now()
	if _, err := c.Write(b); err != nil {
		// The device or address may have gone: reopen next time.
		p.closeConn(c)
		return 0, fmt.Errorf("send echo to %v: %w", p.pin.dst, err)
	}
	for {
		n, err := c.Read(p.rbuf)
		if err != nil {
			if p.isStopped() {
				return 0, errInterrupted
			}
			return 0, fmt.Errorf("echo %v seq %d: %w", p.pin.dst, p.seq, deadlineErr(err, start))
		}
		if p.matches(v4, p.rbuf[:n]) {
			return time.Since(start), nil
		}
		p.skipped.Add(1)
	}
}

func (p *icmpProber) isStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// closeConn closes c if it is still the prober's socket.
func (p *icmpProber) closeConn(c *net.IPConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == c {
		p.conn = nil
	}
	_ = c.Close()
}

// echoRequest builds echo request seq in p.wbuf and returns it.
func (p *icmpProber) echoRequest(seq uint16) []byte {
	v4 := p.pin.dst.Is4()
	b := p.wbuf[:]
	b[0], b[1] = icmpv6EchoRequest, 0
	if v4 {
		b[0] = icmpv4EchoRequest
	}
	binary.BigEndian.PutUint16(b[2:], 0) // checksum
	binary.BigEndian.PutUint16(b[4:], p.id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[echoHeaderLen:], p.cookie[:])
	if v4 {
		// For ICMPv6 the kernel fills in the checksum (it needs the
		// pseudo-header); ICMP for IPv4 is ours to compute.
		binary.BigEndian.PutUint16(b[2:], inetChecksum(b))
	}
	return b
}

// matches reports whether b, read from the socket (connected to the target,
// so from the target), is the reply to the current probe. For IPv4, b starts
// with the IP header.
func (p *icmpProber) matches(v4 bool, b []byte) bool {
	seq, ok := p.replySeq(v4, b)
	return ok && seq == p.seq
}

// replySeq returns the sequence number of b if b is an echo reply to this
// prober (its identifier and cookie), whatever the probe.
func (p *icmpProber) replySeq(v4 bool, b []byte) (seq uint16, ok bool) {
	typ := byte(icmpv6EchoReply)
	if v4 {
		if len(b) < 20 || b[0]>>4 != 4 {
			return 0, false
		}
		hl := int(b[0]&0x0f) * 4
		if hl < 20 || len(b) < hl {
			return 0, false
		}
		b, typ = b[hl:], icmpv4EchoReply
	}
	if len(b) < echoLen || b[0] != typ || b[1] != 0 ||
		binary.BigEndian.Uint16(b[4:]) != p.id ||
		string(b[echoHeaderLen:echoLen]) != string(p.cookie[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[6:]), true
}

// The Monitor's path. Its scheduler sends the echo requests of every due
// target in one wake-up (sendEcho) and judges timeouts itself; one reader
// goroutine per socket (readEchoes), blocked in a read without deadline,
// hands each reply to the Monitor. A probe thus costs one send and one
// reader wake-up, with no timer, deadline or goroutine of its own.

// monoBase anchors monoNow: nanoseconds on the monotonic clock, storable in
// an atomic.
var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) }

// maxReadErrors is how many read errors in a row make readEchoes give up
// its socket.
const maxReadErrors = 16

// sendEcho sends echo request seq, opening the socket first if there is
// none. When it opened one it returns it: the caller must then run
// readEchoes on it. It is called by one goroutine at a time, never
// concurrently with Probe or probeUntil.
func (p *icmpProber) sendEcho(seq uint16) (opened *net.IPConn, err error) {
	p.mu.Lock()
	stopped, c := p.stopped, p.conn
	p.mu.Unlock()
	if stopped {
		return nil, errInterrupted
	}
	if c == nil {
		if c, err = p.open(); err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.stopped { // closed while opening
			p.mu.Unlock()
			_ = c.Close()
			return nil, errInterrupted
		}
		p.conn = c
		p.mu.Unlock()
		opened = c
	}
	b := p.echoRequest(seq)
	// Stored before the write: on loopback the reply is queued, and may be
	// read, before Write returns.
	p.sentAt.Store(monoNow())
	if _, err := c.Write(b); err != nil {
		// The device or address may have gone: reopen next time.
		p.closeConn(c)
		return opened, fmt.Errorf("send echo to %v: %w", p.pin.dst, err)
	}
	return opened, nil
}

// readEchoes reads c until it is closed. For every echo reply to this
// prober it calls reply with the reply's sequence number and the time since
// the last sendEcho; the caller decides whether that is the probe in
// flight. Any other read error is passed to fail: on a connected socket the
// kernel reports an ICMP error about our echoes (destination unreachable)
// once, on the next read, and the probe in flight has then failed.
func (p *icmpProber) readEchoes(c *net.IPConn, reply func(seq uint16, rtt time.Duration), fail func(error)) {
	v4 := p.pin.dst.Is4()
	buf := make([]byte, 1500) // p.rbuf belongs to the Probe path
	errs := 0
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			fail(fmt.Errorf("echo %v: %w", p.pin.dst, err))
			// A socket error is cleared by reading it; one that persists
			// would spin: drop the socket, the next send opens a new one.
			if errs++; errs >= maxReadErrors {
				p.closeConn(c)
				return
			}
			continue
		}
		errs = 0
		rtt := time.Duration(monoNow() - p.sentAt.Load())
		if seq, ok := p.replySeq(v4, buf[:n]); ok {
			reply(seq, rtt)
		} else {
			p.skipped.Add(1)
		}
	}
}

// inetChecksum is the Internet checksum (RFC 1071) of b.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Close closes the socket; a probe running meanwhile returns, and later
// ones fail.
func (p *icmpProber) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close()
	p.conn = nil
	return err
}

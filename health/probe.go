package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// NewProber builds the real prober of target t on uplink u. It opens no
// socket; each probe (or the first, for ICMP) does. Its sockets carry
// u.Health.Mark (SO_MARK), are bound to u.Device unless NoBindDevice is set,
// and use the configured source or u.Device's global address of the
// target's family.
func NewProber(u Uplink, t Target) (Prober, error) {
	p := pin{mark: u.Health.Mark, addrDevice: u.Device, dst: t.Address.Unmap()}
	if !u.Health.NoBindDevice {
		p.bindDevice = u.Device
	}
	if p.dst.Is4() {
		p.src = u.Health.SourceV4.Unmap()
	} else {
		p.src = u.Health.SourceV6
	}
	switch t.Kind {
	case KindICMP:
		return newICMPProber(p), nil
	case KindTCP:
		return &tcpProber{pin: p, port: t.Port}, nil
	case KindHTTP, KindHTTPS:
		return newHTTPProber(p, t)
	case KindDNS:
		return newDNSProber(p, t)
	}
	return nil, fmt.Errorf("kind %q has no prober", t.Kind)
}

// pin is how a probe socket is pinned to its uplink.
type pin struct {
	mark       uint32
	bindDevice string     // SO_BINDTODEVICE, empty for none
	addrDevice string     // where to find the default source address
	src        netip.Addr // configured source, or invalid
	dst        netip.Addr
}

// control sets SO_MARK and SO_BINDTODEVICE before the socket binds or
// connects, so even the first packet (a TCP SYN, a DNS query) follows the
// uplink's table.
func (p pin) control(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if p.mark != 0 {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(p.mark)); err != nil {
				serr = fmt.Errorf("set SO_MARK %#x: %w", p.mark, err)
				return
			}
		}
		if p.bindDevice != "" {
			if err := unix.BindToDevice(int(fd), p.bindDevice); err != nil {
				serr = fmt.Errorf("bind to device %s: %w", p.bindDevice, err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// source returns the address probes leave from: the configured one, or the
// first global unicast address of the target's family on the uplink's
// device, looked up each time a socket opens so that a renumbered uplink is
// followed. With neither, the kernel chooses (from the uplink's table).
func (p pin) source() (netip.Addr, error) {
	if p.src.IsValid() {
		return p.src, nil
	}
	if p.addrDevice == "" {
		return netip.Addr{}, nil
	}
	ifi, err := net.InterfaceByName(p.addrDevice)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find source address: %w", err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find source address on %s: %w", p.addrDevice, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.Is4() == p.dst.Is4() && ip.IsGlobalUnicast() && !ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	fam, key := "IPv6", "source_v6"
	if p.dst.Is4() {
		fam, key = "IPv4", "source_v4"
	}
	return netip.Addr{}, fmt.Errorf("no global %s address on %s to probe from; add one or set %s", fam, p.addrDevice, key)
}

// dialer returns a net.Dialer pinned to the uplink.
func (p pin) dialer(network string) (*net.Dialer, error) {
	src, err := p.source()
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Control: p.control}
	if src.IsValid() {
		switch network {
		case "tcp":
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		case "udp":
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
	}
	return d, nil
}

// network returns "tcp6"/"tcp4" style names matching the target's family,
// so that the source address and destination always agree.
func (p pin) network(base string) string {
	if p.dst.Is4() {
		return base + "4"
	}
	return base + "6"
}

// errNoReply is returned when a probe's deadline passes without an answer.
var errNoReply = errors.New("no reply before the timeout")

// deadlineErr turns a timeout into errNoReply with the time waited.
func deadlineErr(err error, start time.Time) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w (%v)", errNoReply, time.Since(start).Round(time.Millisecond))
	}
	return err
}

// tcpProber connects and closes.
type tcpProber struct {
	pin  pin
	port uint16
}

func (p *tcpProber) Probe(ctx context.Context) (time.Duration, error) {
	d, err := p.pin.dialer("tcp")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	c, err := d.DialContext(ctx, p.pin.network("tcp"), netip.AddrPortFrom(p.pin.dst, p.port).String())
	if err != nil {
		return 0, fmt.Errorf("tcp connect: %w", deadlineErr(err, start))
	}
	rtt := time.Since(start)
	_ = c.Close()
	return rtt, nil
}

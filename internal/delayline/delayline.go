package delayline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/multihomed/multihomed/internal/netns"
)

// Options shape a Line. Zero values take the defaults.
type Options struct {
	// Device names the TUN device (at most 15 bytes); default "mhdelay".
	Device string
	// Table is the routing table the rules point to; default 4242.
	Table int
	// Priority is the rules' preference; default 1000 (after the local
	// table's 0, before main's 32766).
	Priority int
	// Limit is how many packets the queue holds; default 10000.
	Limit int
}

// Line delays packets forwarded in one namespace. Its methods are safe for
// concurrent use.
type Line struct {
	ns    *netns.NS
	tun   *os.File
	delay atomic.Int64 // nanoseconds
	queue chan queued
	done  chan struct{}
	wg    sync.WaitGroup

	delayed, dropped atomic.Uint64

	closeOnce sync.Once
	closeErr  error
	undo      [][]string // commands that remove what Start set up, in order
}

type queued struct {
	due time.Time
	pkt []byte
}

// Start creates a Line in ns that delays by d every packet arriving on iif
// that ns forwards. Close removes it; on error Start removes what it built.
func Start(ctx context.Context, ns *netns.NS, iif string, d time.Duration, opts Options) (_ *Line, err error) {
	if d < 0 {
		return nil, fmt.Errorf("delayline: delay %v is negative", d)
	}
	if opts.Device == "" {
		opts.Device = "mhdelay"
	}
	if len(opts.Device) > 15 {
		return nil, fmt.Errorf("delayline: device name %q is longer than 15 bytes", opts.Device)
	}
	if opts.Table == 0 {
		opts.Table = 4242
	}
	if opts.Priority == 0 {
		opts.Priority = 1000
	}
	if opts.Limit == 0 {
		opts.Limit = 10000
	}
	if opts.Table < 0 || opts.Priority < 0 || opts.Limit < 0 {
		return nil, fmt.Errorf("delayline: table %d, priority %d and limit %d must not be negative", opts.Table, opts.Priority, opts.Limit)
	}
	// The kernel accepts rules for devices that do not exist (yet); a
	// typo would leave the Line delaying nothing.
	if _, err := ns.Run(ctx, "ip", "link", "show", "dev", iif); err != nil {
		return nil, fmt.Errorf("delayline: no device %q in %s to delay packets from: %w", iif, ns.Name, err)
	}
	l := &Line{ns: ns, queue: make(chan queued, opts.Limit), done: make(chan struct{})}
	l.delay.Store(int64(d))
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	if err := ns.Do(func() error {
		f, err := openTUN(opts.Device)
		l.tun = f
		return err
	}); err != nil {
		return nil, fmt.Errorf("delayline: create TUN device %s in %s: %w", opts.Device, ns.Name, err)
	}
	// Reverse-path filtering goes off (below); Close puts the old value
	// back.
	old, err := ns.Run(ctx, "sysctl", "-n", "net.ipv4.conf.all.rp_filter")
	if err != nil {
		return nil, fmt.Errorf("delayline: %w", err)
	}
	l.undo = append(l.undo, []string{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=" + strings.TrimSpace(string(old))})
	table, pref := strconv.Itoa(opts.Table), strconv.Itoa(opts.Priority)
	setup := [][]string{
		{"ip", "link", "set", opts.Device, "up"},
		// Packets written back arrive on the device with sources that
		// the reverse path does not lead to; the effective setting is
		// the maximum of "all" and the device's.
		{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
		{"sysctl", "-qw", "net.ipv4.conf." + opts.Device + ".rp_filter=0"},
		{"ip", "-6", "route", "add", "default", "dev", opts.Device, "table", table},
		{"ip", "-4", "route", "add", "default", "dev", opts.Device, "table", table},
	}
	for _, args := range setup {
		if _, err := ns.Run(ctx, args...); err != nil {
			return nil, fmt.Errorf("delayline: %w", err)
		}
	}
	for _, fam := range []string{"-6", "-4"} {
		if _, err := ns.Run(ctx, "ip", fam, "rule", "add", "pref", pref, "iif", iif, "lookup", table); err != nil {
			return nil, fmt.Errorf("delayline: %w", err)
		}
		l.undo = append(l.undo, []string{"ip", fam, "rule", "del", "pref", pref, "iif", iif, "lookup", table})
	}
	l.wg.Add(2)
	go l.read()
	go l.write()
	return l, nil
}

// openTUN creates the TUN device name in the calling thread's namespace,
// without packet information headers, and returns it non-blocking (so
// closing it ends a pending read).
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// SetDelay changes the delay of packets that arrive from now on. Packets
// already queued keep their time; the queue stays in arrival order, so
// lowering the delay makes new packets wait behind older ones.
func (l *Line) SetDelay(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("delayline: delay %v is negative", d)
	}
	l.delay.Store(int64(d))
	return nil
}

// Delayed returns how many packets the Line has written back.
func (l *Line) Delayed() uint64 { return l.delayed.Load() }

// Dropped returns how many packets the Line lost: they arrived while the
// queue was full, or the kernel refused them when written back.
func (l *Line) Dropped() uint64 { return l.dropped.Load() }

func (l *Line) read() {
	defer l.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := l.tun.Read(buf)
		if err != nil {
			return // closed
		}
		if !forwarded(buf[:n]) {
			// The kernel's own traffic on the device (router
			// solicitations, MLD reports): nothing a router forwards,
			// and it must not take queue room from what it does.
			continue
		}
		q := queued{due: time.Now().Add(time.Duration(l.delay.Load())), pkt: append([]byte(nil), buf[:n]...)}
		select {
		case l.queue <- q:
		default:
			l.dropped.Add(1)
		}
	}
}

// forwarded reports whether pkt can be a packet the namespace forwards:
// IPv6 or IPv4, to neither a multicast, broadcast nor link-local address.
func forwarded(pkt []byte) bool {
	if len(pkt) < 20 {
		return false
	}
	switch pkt[0] >> 4 {
	case 6:
		if len(pkt) < 40 {
			return false
		}
		dst := pkt[24:40]
		return dst[0] != 0xff && !(dst[0] == 0xfe && dst[1]&0xc0 == 0x80)
	case 4:
		dst := pkt[16:20]
		return dst[0] < 224 && !(dst[0] == 169 && dst[1] == 254)
	}
	return false
}

func (l *Line) write() {
	defer l.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		var q queued
		select {
		case q = <-l.queue:
		case <-l.done:
			return
		}
		if w := time.Until(q.due); w > 0 {
			t.Reset(w)
			select {
			case <-t.C:
			case <-l.done:
				return
			}
		}
		if _, err := l.tun.Write(q.pkt); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// The kernel refused this packet (no route, say): it is
			// lost, as it would be on a real link.
			l.dropped.Add(1)
			continue
		}
		l.delayed.Add(1)
	}
}

// Close removes the rules, restores the namespace's reverse-path filtering
// setting, stops the Line and deletes its device (and with it the table's
// routes). Queued packets are dropped, as deleting a netem qdisc drops its
// queue. It is safe to call more than once.
func (l *Line) Close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		for _, args := range l.undo {
			if _, err := l.ns.Run(ctx, args...); err != nil {
				errs = append(errs, err)
			}
		}
		close(l.done)
		if l.tun != nil {
			errs = append(errs, l.tun.Close())
		}
		l.wg.Wait()
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

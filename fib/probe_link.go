package fib

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LinkWatcher reports carrier changes of network links to the controller
// loop (controller.Loop.SetCarrier).
type LinkWatcher struct {
	// Netns is the network namespace to watch; empty for the current one.
	Netns string
}

// WatchCarrier calls fn with the carrier of every link at start and after
// every change, until ctx is done (then it returns nil). A link has carrier
// when it is administratively up and its lower layer is up (IFF_UP and
// IFF_LOWER_UP). fn runs on the watcher's goroutine and must not block.
func (w LinkWatcher) WatchCarrier(ctx context.Context, fn func(device string, up bool)) error {
	opts := netlink.LinkSubscribeOptions{ListExisting: true}
	if w.Netns != "" {
		ns, err := vnetns.GetFromName(w.Netns)
		if err != nil {
			return fmt.Errorf("fib: watch links in %s: %w", w.Netns, err)
		}
		defer ns.Close()
		opts.Namespace = &ns
	}
	// The subscription's goroutine closes ch when done is closed or the
	// socket fails, and reports socket errors through ErrorCallback.
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	opts.ErrorCallback = func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("fib: subscribe to link updates: %w", err)
	}
	last := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-errc:
			// The library reports non-fatal conditions here too (a message
			// from a non-kernel sender, an interrupted dump) and carries
			// on; a fatal socket error also closes ch, handled below.
			continue
		case u, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("fib: link update subscription closed")
			}
			attrs := u.Link.Attrs()
			if attrs == nil {
				continue
			}
			up := u.Header.Type != unix.RTM_DELLINK && hasCarrier(attrs)
			if prev, seen := last[attrs.Name]; seen && prev == up {
				continue
			}
			last[attrs.Name] = up
			fn(attrs.Name, up)
		}
	}
}

// hasCarrier reports whether a link is administratively up and has carrier
// (IFF_LOWER_UP): the one rule for "the link is usable" in fib.
func hasCarrier(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

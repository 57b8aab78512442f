package controller

import (
	"sync"
	"time"
)

// Event is one change of decision, kept in the bounded history.
type Event struct {
	// Seq numbers events from 1, without gaps, for paging and replay.
	Seq uint64
	// Time is when the change was decided.
	Time time.Time
	// Uplink names the uplink; empty for site-wide events (fail-static).
	Uplink string
	// From and To are the states before and after.
	From, To State
	// Reason explains To.
	Reason string
	// Actions lists what was done: announcements, egress, alarms.
	Actions []string
}

// history is a bounded ring of events. Its methods are safe for concurrent
// use: the loop appends, readers page.
type history struct {
	mu sync.Mutex
	// The fields below are guarded by mu.
	buf  []Event
	next uint64
	max  int
	subs map[chan struct{}]struct{}
}

func newHistory(max int) *history {
	return &history{max: max, next: 1, subs: map[chan struct{}]struct{}{}}
}

func (h *history) add(e Event) Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	e.Seq = h.next
	h.next++
	h.buf = append(h.buf, e)
	if len(h.buf) > h.max {
		h.buf = h.buf[len(h.buf)-h.max:]
	}
	for c := range h.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	return e
}

// since returns up to limit events with Seq > after, oldest first.
func (h *history) since(after uint64, limit int) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	for _, e := range h.buf {
		if e.Seq > after {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out
}

// subscribe returns a level-triggered channel signalled on every append.
func (h *history) subscribe() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	return c, func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}
}

package controller

import (
	"sort"
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
	// Edge is the other edge's router ID when Uplink is one of its
	// uplinks (a change of the remote view); empty for our own.
	Edge string
	// From and To are the states before and after.
	From, To State
	// Reason explains To.
	Reason string
	// Actions lists what was done: announcements, egress, alarms.
	Actions []string
}

// history is a bounded ring of events. Its methods are safe for concurrent
// use: the loop appends, readers page. The loop's add waits for mu, so no
// reader holds mu for longer than a binary search and a bounded copy: a
// watcher joining with a million events kept costs the loop nothing more
// than one with ten.
type history struct {
	mu sync.Mutex
	// The fields below are guarded by mu. buf is in Seq order, Seq
	// strictly increasing.
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

// since returns up to limit events with Seq > after, oldest first (all of
// them when limit <= 0). O(log n + limit) under mu.
func (h *history) since(after uint64, limit int) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := sort.Search(len(h.buf), func(i int) bool { return h.buf[i].Seq > after })
	rest := h.buf[i:]
	if limit > 0 && len(rest) > limit {
		rest = rest[:limit]
	}
	if len(rest) == 0 {
		return nil
	}
	// A copy: the caller may keep it while the ring moves on.
	return append([]Event(nil), rest...)
}

// bounds returns the Seq of the oldest and the newest event kept, zeros
// when there is none. O(1).
func (h *history) bounds() (oldest, newest uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.buf) == 0 {
		return 0, 0
	}
	return h.buf[0].Seq, h.buf[len(h.buf)-1].Seq
}

// EventBounds returns the sequence numbers of the oldest and the newest
// event the history keeps (zeros when empty), in constant time, so a new
// watcher finds its replay start without paging through the history.
// Safe for concurrent use.
func (l *Loop) EventBounds() (oldest, newest uint64) { return l.history.bounds() }

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

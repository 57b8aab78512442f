package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/multihomed/multihomed/api/v1"
)

const maxReplay = 1000

// WatchEvents implements apiv1.MultihomedServer. A pump goroutine copies
// events from the controller's history into a bounded buffer; this
// goroutine sends from the buffer. The controller only ever signals
// without blocking, so however slow the client, nothing waits for it:
// when the buffer is full the pump drops events, counts them, and puts a
// Lagged message in the stream before the next event it can deliver.
// Events the bounded history dropped before the pump read them count as
// missed too.
func (s *Server) WatchEvents(req *apiv1.WatchEventsRequest, stream apiv1.Multihomed_WatchEventsServer) error {
	if req.GetReplay() > maxReplay {
		return statusOf(wrapInvalid("replay %d is above %d", req.GetReplay(), maxReplay))
	}
	release, err := s.takeStream(identityOf(stream.Context()).Name)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	// Subscribe before reading the start position so no event falls
	// between the two.
	wake, unsubscribe := s.ctl.SubscribeEvents()
	defer unsubscribe()
	after := s.startAfter(req)
	buf := make(chan *apiv1.WatchEventsResponse, s.watchBuffer)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pump(ctx, s.ctl, wake, after, buf)
	}()
	defer func() { cancel(); <-done }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case m := <-buf:
			if err := stream.Send(m); err != nil {
				return err
			}
		}
	}
}

// startAfter returns the sequence number after which the stream starts:
// after, or replay events before the newest kept (everything kept when
// there are fewer). Constant time: no scan of the history.
func (s *Server) startAfter(req *apiv1.WatchEventsRequest) uint64 {
	if req.GetAfter() > 0 {
		return req.GetAfter()
	}
	oldest, last := s.ctl.EventBounds()
	if r := uint64(req.GetReplay()); last >= r && last-r >= oldest {
		return last - r
	}
	return 0 // everything kept
}

// takeStream counts a WatchEvents stream against who's limit; release
// gives it back.
func (s *Server) takeStream(who string) (release func(), err error) {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	if s.streams[who] >= s.maxStreams {
		return nil, status.Errorf(codes.ResourceExhausted, "%s already has %d WatchEvents streams open, the limit per caller; close one (mhctl events --follow elsewhere?)", who, s.maxStreams)
	}
	s.streams[who]++
	return func() {
		s.streamsMu.Lock()
		defer s.streamsMu.Unlock()
		if s.streams[who]--; s.streams[who] <= 0 {
			delete(s.streams, who)
		}
	}, nil
}

// pump moves events after `after` into buf until ctx ends, never blocking
// on buf.
func pump(ctx context.Context, ctl Controller, wake <-chan struct{}, after uint64, buf chan<- *apiv1.WatchEventsResponse) {
	var missed uint64
	for {
		for {
			evs := ctl.Events(after, maxPage)
			if len(evs) == 0 {
				break
			}
			for _, e := range evs {
				if after > 0 && e.Seq > after+1 {
					missed += e.Seq - after - 1 // evicted from the history unread
				}
				after = e.Seq
				if missed > 0 {
					select {
					case buf <- &apiv1.WatchEventsResponse{Item: &apiv1.WatchEventsResponse_Lagged{Lagged: &apiv1.Lagged{Missed: missed}}}:
						missed = 0
					default:
						missed++ // no room for the marker: this event is lost too
						continue
					}
				}
				select {
				case buf <- &apiv1.WatchEventsResponse{Item: &apiv1.WatchEventsResponse_Event{Event: eventToProto(e)}}:
				default:
					missed++
				}
			}
			if ctx.Err() != nil {
				return
			}
		}
		if missed > 0 {
			// Owe the client a marker: send it as soon as there is room,
			// even if no further event comes.
			select {
			case <-ctx.Done():
				return
			case buf <- &apiv1.WatchEventsResponse{Item: &apiv1.WatchEventsResponse_Lagged{Lagged: &apiv1.Lagged{Missed: missed}}}:
				missed = 0
			case <-wake:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

package server

import (
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// Resume: a listener that reconnects with the id of the last event it
// received (Last-Event-ID) gets every event after it that is still held, then
// the live stream, with no duplicate and no gap. When that is not possible it
// is told first, with a "gap" event:
//
//	id of this run, still held            the events after it, then live
//	id of this run, older than the buffer  gap {"missed":N} (N known for a
//	                                       listener to every topic without
//	                                       a filter, null otherwise), then
//	                                       the oldest held
//	foreign (another run or stream),       gap {"missed":null}, then live
//	malformed, or never given out

// resumePlan is what a stream sends before its first live frame.
type resumePlan struct {
	topics []string
	filter *filter.Filter // the listener's filter, nil without one
	// replay, with a bridge, says how to join the shared stream to the ring
	// (see sharedresume.go).
	replay *streamReplay
	// gap: send a gap event first, with missed when known.
	missed uint64
	gap    bool
	known  bool
}

// ringFilter returns the plan's filter as the ring takes it: a nil
// *filter.Filter must be a nil interface.
func (p *resumePlan) ringFilter() fanout.Filter {
	if p.filter == nil {
		return nil
	}
	return p.filter
}

// subscribe returns a subscriber for a listener on topics (nil: every topic)
// with a filter (nil: none) that resumes after lastID (nil: live), and what
// to send first.
func (s *Server) subscribe(lastID []byte, topics []string, flt *filter.Filter) (*fanout.Subscriber, resumePlan, error) {
	plan := resumePlan{topics: topics, filter: flt}
	rf := plan.ringFilter()
	if len(lastID) == 0 || !s.cfg.Replay {
		sub, err := s.ring.SubscribeFilter(rf, topics...)
		return sub, plan, err
	}
	if s.bridge != nil {
		return s.subscribeShared(lastID, topics, plan)
	}
	sp := s.epoch.Load().space
	n, ok := sp.parse(lastID)
	if !ok {
		sub, err := s.ring.SubscribeFilter(rf, topics...)
		plan.gap = true
		return sub, plan, err
	}
	key := sp.key(n)
	sub, res, err := s.ring.SubscribeFilterAfter(key, rf, topics...)
	if err != nil {
		return nil, plan, err
	}
	switch res.Status {
	case fanout.ResumeExact:
	case fanout.ResumeOlder:
		if res.Oldest == key+1 {
			break // the oldest held is the very next event: nothing missed
		}
		plan.gap = true
		if len(topics) == 0 && flt == nil && res.Oldest > key {
			// In a run, keys are consecutive: every event between the
			// listener's and the oldest held is one it missed.
			plan.missed, plan.known = res.Oldest-key-1, true
		}
	case fanout.ResumeNewer:
		plan.gap = true // never given out by this run
	}
	return sub, plan, nil
}

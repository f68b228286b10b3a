package server

import (
	"context"
	"errors"
	"io"
	"math"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Resume on a shared stream.
//
// A listener's last id is sequence n of the stream. What it must get next is
// every event of its topics after n, once, in order, then the live ones. The
// ring holds the instance's recent frames; the stream holds everything
// since its max age. A stream subscribes to the ring at once (in openStream:
// from then on, nothing the ring is given escapes the subscriber but by
// lapping), and then joins the two in the stream's goroutine (replayFromStream):
//
//	events:   ... n | n+1 ...      target | target+1 ...
//	                  <- from the stream ->
//	                                 <- the subscriber, from when it subscribed ->
//
// target is a sequence every frame the ring had made visible when the
// subscriber was created is at or below: the replay from the stream must reach
// it, and the subscriber has everything after it. When the ring continues n
// itself (the subscriber is placed right after n), target is n and the stream
// is not asked anything. Otherwise the subscriber starts at the ring's live
// end, and the events from n+1 up to target (at least) come from the stream.
//
// While the replay runs, the live events keep coming: the subscriber is read
// after every replayed event and what it gives is kept aside (pending), so
// that the ring cannot lap it. Should it be lapped all the same (it reports a
// miss), the hole is filled from the stream too: the replay goes on until it
// reaches the first frame the subscriber gave after the hole (the anchor).
// Then the pending frames after what was replayed are written, and the stream
// goes on live from the subscriber, which passes over what was replayed. So
// the listener gets every event once, with no gap, whatever the rate and the
// buffer, as long as the replay reads faster than events arrive.
//
// A replay is opened only when needed, and it checks the listener's id: an id
// beyond the stream's last was never given out, and gets {"missed":null} and
// the live stream, with nothing skipped.

// replayLimit bounds how long a stream may spend joining the shared stream to
// the ring.
const replayLimit = time.Minute

// replayWait is the longest a stream waits for the replay's next message
// before it reads the ring again (and sends a heartbeat when one is due).
const replayWait = 10 * time.Millisecond

// streamReplay is the plan of a listener resuming on a shared stream.
type streamReplay struct {
	space    *idSpace
	identity natsbridge.Identity
	after    uint64 // the listener's last sequence
	target   uint64 // see the comment above
	// verified: after is a sequence the stream gave out (this instance
	// consumed it); otherwise the replay checks it before anything is
	// skipped.
	verified bool
}

// subscribeShared is subscribe with a bridge: it subscribes a listener on
// topics that resumes after lastID, and plans how to join the stream to the
// ring (see above).
func (s *Server) subscribeShared(lastID []byte, topics []string, plan resumePlan) (*fanout.Subscriber, resumePlan, error) {
	ep := s.adoptIdentity()
	n, ok := ep.space.parse(lastID)
	if !ok && ep.prev != nil {
		if _, prevOK := ep.prev.space.parse(lastID); prevOK {
			// An id of the stream this one replaced: the listener missed
			// what it had not received of that one, and gets this one from
			// its start.
			n, ok, plan.gap = 0, true, true
		}
	}
	if !ok || ep.identity.IsZero() {
		sub, err := s.ring.SubscribeFilter(plan.ringFilter(), topics...)
		plan.gap = true
		return sub, plan, err
	}
	r := &streamReplay{space: ep.space, identity: ep.identity, after: n}
	plan.replay = r
	first, last := s.consumed(ep)
	r.verified = first != 0 && first <= n && n <= last
	if first != 0 && first <= n+1 && n <= last {
		// The ring may continue n itself: this instance consumed n+1 on.
		sub, res, err := s.ring.SubscribeFilterAfter(ep.space.key(n), plan.ringFilter(), topics...)
		if err != nil {
			return nil, plan, err
		}
		// Unless the subscriber starts so far back that the ring is about to
		// lap it: it would lose its first frames before its stream runs.
		if sub.Behind() <= uint64(s.ring.Size())*3/4 {
			r.target = n
			if res.Status == fanout.ResumeOlder && res.Oldest > ep.space.key(n+1) {
				r.target = res.Oldest - ep.space.keyBase - 1 // the ring lost n+1 on: from the stream
			}
			sub.SkipThrough(ep.space.key(n))
			return sub, plan, nil
		}
		_ = sub.Close()
	}
	sub, err := s.ring.SubscribeFilter(plan.ringFilter(), topics...)
	if err != nil {
		return nil, plan, err
	}
	// Every frame visible when the subscriber was created has a sequence up
	// to the last one Deliver recorded (it records before it publishes), and
	// up to the last one the bridge handed over (or, before it handed any,
	// the last before its consumer's start): read both now, after
	// subscribing.
	_, last = s.consumed(ep)
	r.target = last
	if id, next := s.bridge.Position(); !id.Equal(ep.identity) || next == 0 {
		r.target = math.MaxUint64 // another incarnation: the replay will say
	} else {
		r.target = max(r.target, next-1)
	}
	return sub, plan, nil
}

// seam is the state of replayFromStream.
type seam struct {
	st      *stream
	r       *streamReplay
	replay  *natsbridge.Replay // opened when the ring alone cannot do
	pending []*fanout.Frame    // frames read from the subscriber, not written yet
	batch   []*fanout.Frame    // Read's scratch
	frame   []byte             // a replayed event's frame, reused
	// hole is the index in pending of the first frame read after the
	// subscriber last reported a miss; -1 if it never did.
	hole int
	// covered: the listener has every event of its topics up to this
	// sequence.
	covered uint64
	// caughtUp: the replay read every event of the listener's topics the
	// stream held at some moment after the subscriber was created.
	caughtUp bool
	// verified: covered is a sequence the stream gave out; until then
	// nothing is skipped.
	verified  bool
	unflushed int // frames written since the last flush
}

// replayFromStream sends a resuming listener what it misses before the live
// frames (see the comment at the top of this file). It returns an error when
// a write failed (the stream is over), and nil otherwise, also when the
// stream was stopped meanwhile (the loop that follows ends it).
func (st *stream) replayFromStream(w sink) error {
	ctx, cancel := context.WithTimeout(st.ctx, replayLimit)
	defer cancel()
	m := &seam{st: st, r: st.resume.replay, hole: -1, batch: make([]*fanout.Frame, 0, batchSize)}
	m.covered, m.verified = m.r.after, m.r.verified
	defer m.close()
	if m.verified {
		st.sub.SkipThrough(m.r.space.key(m.covered))
	}
	for {
		m.drain()
		if k := m.foreign(); k >= 0 {
			return m.replaced(w, k)
		}
		if m.joined() {
			st.srv.log.Debug("resumed listener joined the live events", "remote", st.who.ip, "after", m.r.after,
				"target", m.r.target, "covered", m.covered, "pending", len(m.pending), "hole", m.hole,
				"replayed", m.replay != nil)
			return m.finish(w, false)
		}
		if st.ctx.Err() != nil {
			return nil
		}
		if m.replay == nil {
			if err := m.open(ctx, w); err != nil {
				return m.failed(w, err)
			}
			continue
		}
		nctx, ncancel := context.WithTimeout(ctx, replayWait)
		d, err := m.replay.Next(nctx)
		ncancel()
		switch {
		case err == nil:
			if err := m.add(w, d); err != nil {
				return err
			}
		case errors.Is(err, natsbridge.ErrCaughtUp):
			m.caughtUp = true
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if time.Since(st.lastFlush) >= st.srv.cfg.Heartbeat && m.unflushed == 0 {
				_, _ = io.WriteString(w, heartbeat)
				if err := st.flush(w, 0, 0, 0); err != nil {
					return err
				}
			}
		default:
			return m.failed(w, err)
		}
	}
}

// open opens the replay after what the listener has, and tells the listener
// of what the stream no longer holds.
func (m *seam) open(ctx context.Context, w sink) error {
	s := m.st.srv
	r, err := s.bridge.OpenReplay(ctx, m.r.identity, m.covered+1, m.st.resume.topics)
	if err != nil {
		return err
	}
	m.replay, m.verified = r, true
	if gone := r.Gone(); gone > 0 {
		// The stream no longer has the events up to end. The subscriber
		// has those after target, unless it missed some.
		end := m.covered + gone
		if m.hole < 0 && m.r.target >= m.covered && m.r.target < end {
			end = m.r.target
		}
		var buf [64]byte
		_, _ = w.Write(appendGap(buf[:0], end-m.covered, len(m.st.resume.topics) == 0 && m.st.resume.filter == nil))
		m.covered = end
	}
	m.st.sub.SkipThrough(m.r.space.key(m.covered))
	m.caughtUp = r.CaughtUp()
	if s.testHook != nil {
		s.testHook("replay opened")
	}
	return nil
}

// add writes an event read from the stream, unless the subscriber has it
// already (the replay reached the anchor: then every event before it is
// written, and the pending frames take over).
func (m *seam) add(w sink, d natsbridge.Delivery) error {
	m.caughtUp = m.caughtUp || m.replay.CaughtUp()
	if d.Seq <= m.covered {
		return nil
	}
	if anchor := m.anchor(); anchor != 0 && d.Seq >= anchor {
		m.covered = anchor - 1
		return nil
	}
	m.covered = d.Seq
	m.st.sub.SkipThrough(m.r.space.key(d.Seq))
	var event []byte
	var ok bool
	if m.frame, event, _, ok = consumedFrame(m.frame[:0], m.r.space, d); !ok {
		m.st.srv.stats.consumeInvalid.Add(1)
		return nil
	}
	if f := m.st.resume.filter; f != nil && !f.Matches(event, d.Seq) {
		m.st.srv.stats.filteredOut.Add(1) // as the live stream counts it
		return nil
	}
	_, _ = w.Write(m.frame)
	if m.unflushed++; m.unflushed == batchSize {
		return m.flush(w)
	}
	return nil
}

func (m *seam) flush(w sink) error {
	n := m.unflushed
	m.unflushed = 0
	m.st.delivered.Add(uint64(n))
	return m.st.flush(w, 0, n, n)
}

// drain reads every frame the subscriber has into pending, noting where it
// reported a miss. Past twice the ring's size, pending is dropped, as if the
// subscriber had been lapped: the replay fills it in.
func (m *seam) drain() {
	limit := 2 * m.st.srv.ring.Size()
	for {
		var missed uint64
		m.batch, missed = m.st.sub.Read(m.batch[:0])
		if missed > 0 {
			m.hole = len(m.pending)
		}
		m.pending = append(m.pending, m.batch...)
		if len(m.pending) > limit {
			clear(m.pending)
			m.pending, m.hole = m.pending[:0], 0
		}
		if len(m.batch) < cap(m.batch) && missed == 0 {
			return
		}
	}
}

// anchor returns the sequence of the first frame of an event the subscriber
// gave after its last miss, 0 if it never missed or has given none since:
// the replay must reach it.
func (m *seam) anchor() uint64 {
	if m.hole < 0 {
		return 0
	}
	for _, f := range m.pending[m.hole:] {
		if f.Topic() != nil { // broadcast frames (gaps) are no events of the stream
			return f.Key() - m.r.space.keyBase
		}
	}
	return 0
}

// joined tells whether the replay and the subscriber now meet.
func (m *seam) joined() bool {
	if !m.verified {
		return false
	}
	if m.hole < 0 {
		return m.covered >= m.r.target || m.caughtUp
	}
	anchor := m.anchor()
	return anchor != 0 && m.covered+1 >= anchor
}

// foreign returns the index of the first pending frame of another stream
// incarnation (the stream was replaced meanwhile), -1 if none.
func (m *seam) foreign() int {
	base := m.r.space.keyBase
	for i, f := range m.pending {
		if f.Key()-(f.Key()&(1<<streamSeqBits-1)) != base {
			return i
		}
	}
	return -1
}

// finish writes the pending frames after what the listener has (all of them
// when all is set), and hands over to the live loop, which passes over what
// was replayed.
func (m *seam) finish(w sink, all bool) error {
	limit := m.r.space.key(m.covered)
	if all {
		limit = 0
	}
	for _, f := range m.pending {
		if f.Key() > limit {
			_, _ = w.Write(f.Bytes())
			m.unflushed++
		}
	}
	clear(m.pending)
	m.pending = m.pending[:0]
	m.st.sub.SkipThrough(limit)
	return m.flush(w)
}

// failed tells the listener that events before the live ones could not be
// sent (the stream cannot be read, was replaced, or never gave out the id),
// and goes on live: what the subscriber has, nothing skipped.
func (m *seam) failed(w sink, err error) error {
	st := m.st
	if st.ctx.Err() != nil {
		return nil
	}
	if !errors.Is(err, natsbridge.ErrAhead) {
		st.srv.log.Info("replay from the stream failed; the listener gets a gap", "error", err, "remote", st.who.ip)
	}
	var buf [64]byte
	_, _ = w.Write(appendGap(buf[:0], 0, false))
	// An id not checked against the stream may never have been given out:
	// nothing is passed over for it.
	return m.finish(w, !m.verified)
}

// replaced goes on with the stream that replaced the listener's, from its
// first pending frame (k): a gap event first, unless that frame is one.
func (m *seam) replaced(w sink, k int) error {
	if m.pending[k].Topic() != nil {
		var buf [64]byte
		_, _ = w.Write(appendGap(buf[:0], 0, false))
	}
	m.pending = m.pending[k:]
	return m.finish(w, true)
}

func (m *seam) close() {
	if m.replay != nil {
		m.replay.Close()
	}
}

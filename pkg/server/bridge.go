package server

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Several instances, one stream.
//
// With a Bridge, an accepted event is not published to the ring directly: it
// is published to a NATS JetStream stream that every instance shares, and
// answered once JetStream acknowledged it. Every instance consumes the stream
// in order (Deliver) and publishes each message to its ring, where its
// listeners read it: every listener on every instance sees every event once,
// in the stream's single order. An event's id is then its stream sequence
// number, in the id space of the stream's incarnation (its creation time), so
// a listener resumes on any instance; one that resumes from an id older than
// the instance's ring but still in the stream gets the missing events from
// the stream first (replayFromStream).

// Bridge shares events between instances; *natsbridge.Bridge implements it.
type Bridge interface {
	Publish(ctx context.Context, m natsbridge.Message) (uint64, error)
	PublishBatch(ctx context.Context, msgs []natsbridge.Message) (int, error)
	FirstSeq(ctx context.Context, id natsbridge.Identity) (uint64, error)
	Replay(ctx context.Context, id natsbridge.Identity, from, to uint64, topics []string,
		fn func(natsbridge.Delivery) error) (uint64, error)
	Status() natsbridge.Status
}

// epoch is the id space events are numbered in now, and, with a bridge, the
// stream incarnation it belongs to. It is immutable; Server.epoch holds the
// current one.
type epoch struct {
	space    *idSpace
	identity natsbridge.Identity // zero without a bridge, or before the stream is known
}

// consumer is the state of Deliver, owned by the bridge's consumer goroutine.
type consumer struct {
	mu      sync.Mutex // Deliver runs on one goroutine; adoptIdentity may run on others
	ordinal uint64     // stream incarnations seen
	lastSeq uint64     // the last sequence delivered in the current incarnation
	// firstSeq is the first sequence delivered in the current incarnation:
	// the ring was given every one from there to lastSeq (or a gap frame
	// for those that expired unread).
	firstSeq uint64
}

// Deliver publishes a message of the shared stream to the ring, with the id
// and the frame every instance gives it. It is the bridge's handler: called
// from one goroutine, in stream order. When the stream was replaced (or lost
// its messages) or messages expired before they were read, listeners get a
// gap event first.
func (s *Server) Deliver(d natsbridge.Delivery) {
	c := &s.consumer
	c.mu.Lock()
	ep := s.epoch.Load()
	switch {
	case ep.identity.IsZero():
		ep = s.newEpoch(d.Identity)
	case !ep.identity.Equal(d.Identity) || d.Seq <= c.lastSeq:
		if ep.identity.Equal(d.Identity) {
			s.log.Error("the stream lost its messages but kept its identity: ids given before are ambiguous",
				"stream", d.Identity.String(), "last_seq", c.lastSeq, "seq", d.Seq)
		}
		ep = s.newEpoch(d.Identity)
		c.lastSeq = 0
		// Ids of the old stream are foreign now; listeners learn that
		// their events stopped where they were. The gap's id is the new
		// stream's sequence 0: resuming from it replays the new stream.
		s.publishGap(ep, 0)
	case d.Seq > c.lastSeq+1 && c.lastSeq > 0:
		// Messages expired before this instance read them (a long outage).
		s.publishGap(ep, d.Seq-1)
	}
	if c.lastSeq == 0 {
		c.firstSeq = d.Seq
	}
	c.lastSeq = d.Seq
	c.mu.Unlock()
	if s.testHook != nil {
		s.testHook("deliver")
	}

	head := frameHead{topic: d.Topic, event: []byte(d.Event)}
	if head.topic == "" {
		head.topic = DefaultTopic
	}
	res, err := s.ring.Reserve(head.topic, 1)
	if err != nil {
		if !errors.Is(err, fanout.ErrClosed) {
			s.stats.consumeDropped.Add(1)
			s.warnCut("event from the stream not delivered to this instance's listeners", "error", err, "seq", d.Seq)
		}
		return
	}
	frame := make([]byte, 0, head.room()+len(d.Data)+len(frameEnd))
	frame = appendFrame(frame, ep.space, d.Seq, head, d.Data)
	payload := frame[len(frame)-len(frameEnd)-len(d.Data) : len(frame)-len(frameEnd)]
	s.ring.Commit(res, fanout.Message{Data: frame, Key: ep.space.key(d.Seq), Stamp: d.Stored.UnixNano(), Event: payload})
}

// newEpoch makes id the current stream incarnation, with a new id space.
// The caller holds consumer.mu.
func (s *Server) newEpoch(id natsbridge.Identity) *epoch {
	s.consumer.ordinal++
	ep := &epoch{space: newStreamSpace(id.Created.UnixNano(), s.consumer.ordinal), identity: id}
	s.epoch.Store(ep)
	return ep
}

// adoptIdentity makes the bridge's stream incarnation current if none is
// known yet (before the first message is consumed), so that listeners
// resuming then are understood.
func (s *Server) adoptIdentity() *epoch {
	ep := s.epoch.Load()
	if s.bridge == nil || !ep.identity.IsZero() {
		return ep
	}
	id := s.bridge.Status().Identity
	if id.IsZero() {
		return ep
	}
	s.consumer.mu.Lock()
	defer s.consumer.mu.Unlock()
	if ep = s.epoch.Load(); ep.identity.IsZero() {
		ep = s.newEpoch(id)
	}
	return ep
}

// publishGap publishes a broadcast gap event, for every listener whatever its
// topics, with the id of sequence seq in ep's space (the last sequence
// before the gap).
func (s *Server) publishGap(ep *epoch, seq uint64) {
	res, err := s.ring.Reserve("", 1)
	if err != nil {
		return
	}
	frame := appendFrame(nil, ep.space, seq, frameHead{event: []byte("gap")}, []byte(`{"missed":null}`))
	s.ring.Commit(res, fanout.Message{Data: frame, Key: ep.space.key(seq), Stamp: time.Now().UnixNano()})
}

// publishShared publishes an event to the shared stream and waits for its
// acknowledgement.
func (s *Server) publishShared(ctx *fasthttp.RequestCtx, in input, seg []byte) error {
	_, err := s.bridge.Publish(ctx, natsbridge.Message{
		Topic: in.head.topic,
		Event: string(in.head.event),
		MsgID: string(ctx.Request.Header.Peek("Idempotency-Key")),
		Data:  seg[in.room:],
	})
	return err
}

// publishSharedBatch publishes a batch to the shared stream and returns how
// many of its events, from the first, JetStream acknowledged. topics, when
// not nil, are the events' own topics.
func (s *Server) publishSharedBatch(ctx *fasthttp.RequestCtx, in input, segs [][]byte, topics []string) (int, error) {
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	msgs := make([]natsbridge.Message, len(segs))
	for i, seg := range segs {
		msgs[i] = natsbridge.Message{Topic: in.head.topic, Event: string(in.head.event), Data: seg[in.room:]}
		if topics != nil {
			msgs[i].Topic = topics[i]
		}
		if key != "" {
			msgs[i].MsgID = natsbridge.BatchMsgID(key, i)
		}
	}
	return s.bridge.PublishBatch(ctx, msgs)
}

// sharedError maps a bridge error to an answer.
func (s *Server) refuseShared(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, natsbridge.ErrInvalidMessage):
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, err.Error())
	case errors.Is(err, natsbridge.ErrRejected):
		s.reject(ctx, RejectTooLarge, fasthttp.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, natsbridge.ErrClosed):
		ctx.SetConnectionClose()
		s.reject(ctx, RejectShuttingDown, fasthttp.StatusServiceUnavailable, "shutting down")
	default:
		// Unavailable (NATS unreachable, no acknowledgement in time): the
		// event may or may not be stored; a retry with the same
		// Idempotency-Key is safe.
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		s.reject(ctx, RejectUnavailable, fasthttp.StatusServiceUnavailable,
			"cannot share the event with the other instances: "+err.Error())
	}
}

// planShared adapts a resume to the shared stream: the listener's last
// event id is sequence n of the current stream, and sub is positioned right
// after the greatest key held not above it. Events the instance's ring does
// not hold (older than it, or from before the instance joined the stream)
// are replayed from the stream first; events the listener already has (an
// instance further ahead served it) are skipped.
func (s *Server) planShared(sub *fanout.Subscriber, plan resumePlan, ep *epoch, n uint64) resumePlan {
	sub.SkipThrough(ep.space.key(n))
	var to uint64
	if next, ok := sub.NextKey(); ok {
		first := next - ep.space.keyBase // next is in the current space: above key(n)
		if first <= n+1 {
			return plan // nothing missing
		}
		to = first
	} else {
		// Nothing visible after n. The ring holds, or is about to hold (a
		// frame Deliver is building is not visible yet), every sequence
		// from the first this instance consumed of this stream on. If that
		// is n+1 or less, the listener is up to date, or ahead and what it
		// has is skipped as it arrives. Otherwise the sequences before it
		// come from the stream; if nothing was consumed yet, every one
		// after n does: the consumer, started later, will never deliver
		// those before its start, and those it does deliver are skipped.
		switch first := s.firstConsumed(ep); {
		case first == 0:
			to = math.MaxUint64
		case first <= n+1:
			return plan
		default:
			to = first
		}
	}
	plan.replay = &streamReplay{identity: ep.identity, space: ep.space, from: n + 1, to: to}
	return plan
}

// firstConsumed returns the first sequence this instance consumed from ep's
// stream, 0 if none (or ep is no longer current).
func (s *Server) firstConsumed(ep *epoch) uint64 {
	s.consumer.mu.Lock()
	defer s.consumer.mu.Unlock()
	if s.epoch.Load() != ep || s.consumer.lastSeq == 0 {
		return 0
	}
	return s.consumer.firstSeq
}

// streamReplay is a range of the shared stream a stream sends before its
// live frames.
type streamReplay struct {
	space    *idSpace
	identity natsbridge.Identity
	from, to uint64 // stream sequences [from, to)
}

// replayFromStream writes the events of the plan's range, read from the
// shared stream, before the live stream: a gap first for what the stream no
// longer holds. It flushes as it goes. An error ends the stream.
func (st *stream) replayFromStream(w sink) error {
	s, r := st.srv, st.resume.replay
	ctx, cancel := context.WithTimeout(st.ctx, time.Minute)
	defer cancel()
	first, err := s.bridge.FirstSeq(ctx, r.identity)
	if err != nil {
		return st.replayFailed(w, err)
	}
	if first > r.from {
		var buf [64]byte
		gone := min(first, r.to) - r.from
		_, _ = w.Write(appendGap(buf[:0], gone, len(st.resume.topics) == 0))
	}
	var frame []byte
	n := 0
	_, err = s.bridge.Replay(ctx, r.identity, max(r.from, first), r.to, st.resume.topics, func(d natsbridge.Delivery) error {
		// The live stream passes over what the replay sent.
		st.sub.SkipThrough(r.space.key(d.Seq))
		frame = appendFrame(frame[:0], r.space, d.Seq, frameHead{topic: d.Topic, event: []byte(d.Event)}, d.Data)
		_, _ = w.Write(frame)
		if n++; n%batchSize == 0 {
			st.delivered.Add(batchSize)
			return st.flush(w, 0, batchSize, batchSize)
		}
		return nil
	})
	st.delivered.Add(uint64(n % batchSize))
	if err != nil {
		return st.replayFailed(w, err)
	}
	return st.flush(w, 0, 0, 0)
}

// replayFailed tells the listener that events before the live ones could not
// be replayed (the stream is unreachable, or was replaced), and goes on live.
func (st *stream) replayFailed(w sink, err error) error {
	if st.ctx.Err() != nil {
		return err
	}
	st.srv.log.Info("replay from the stream failed; the listener gets a gap", "error", err, "remote", st.who.ip)
	var buf [64]byte
	_, _ = w.Write(appendGap(buf[:0], 0, false))
	return st.flush(w, 0, 0, 0)
}

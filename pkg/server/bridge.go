package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/goccy/go-json/jsontext"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Several instances, one stream.
//
// With a Bridge, an accepted event is not published to the ring directly: it
// is published to a NATS JetStream stream that every instance shares, and
// answered once JetStream acknowledged it (sharedpublish.go). Every instance
// consumes the stream in order (Deliver) and publishes each message to its
// ring, where its listeners read it: every listener on every instance sees
// every event once, in the stream's single order. An event's id is then its
// stream sequence number, in the id space of the stream's incarnation (its
// creation time), so a listener resumes on any instance; one that resumes
// from an id the instance's ring cannot continue from gets the missing events
// from the stream first (sharedresume.go).

// Bridge shares events between instances; *natsbridge.Bridge implements it.
type Bridge interface {
	Publish(ctx context.Context, m natsbridge.Message) (natsbridge.Ack, error)
	PublishBatch(ctx context.Context, msgs []natsbridge.Message) (natsbridge.BatchAck, error)
	OpenReplay(ctx context.Context, id natsbridge.Identity, from uint64, topics []string) (*natsbridge.Replay, error)
	Position() (natsbridge.Identity, uint64)
	Status() natsbridge.Status
}

// epoch is the id space events are numbered in now, and, with a bridge, the
// stream incarnation it belongs to. It is immutable; Server.epoch holds the
// current one.
type epoch struct {
	space    *idSpace
	identity natsbridge.Identity // zero without a bridge, or before the stream is known
	// prev is the stream incarnation before this one (without its own prev),
	// nil if none: a listener whose last id is of it missed what it had not
	// received of it, and gets this one from its start.
	prev *epoch
}

// consumer is the state of Deliver, owned by the bridge's consumer goroutine.
type consumer struct {
	mu      sync.Mutex // Deliver runs on one goroutine; adoptIdentity may run on others
	ordinal uint64     // stream incarnations seen
	lastSeq uint64     // the last sequence delivered in the current incarnation
	// firstSeq is the first sequence delivered in the current incarnation:
	// the ring was given every one from there to lastSeq (or a gap frame
	// for those that expired unread), but those that failed the checks.
	firstSeq uint64
}

// Deliver publishes a message of the shared stream to the ring, with the id
// and the frame every instance gives it. It is the bridge's handler: called
// from one goroutine, in stream order. When the stream was replaced (or lost
// its messages) or messages expired before they were read, listeners get a
// gap event first. A message is checked as a POST is (consumedFrame): one
// that fails is skipped and counted, never framed.
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
		// Ids of the old stream are foreign now; listeners learn that their
		// events stopped where they were. The gap has no id (a listener's
		// last id stays the last event it received); its ring key is the
		// new stream's sequence 0, below every event of the new stream.
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

	frame, event, topic, ok := consumedFrame(nil, ep.space, d)
	if !ok {
		s.stats.consumeInvalid.Add(1)
		s.warnCut("message from the stream failed the checks of an event; skipped", "seq", d.Seq, "topic", d.Topic)
		return
	}
	res, err := s.ring.Reserve(topic, 1)
	if err != nil {
		if !errors.Is(err, fanout.ErrClosed) {
			s.stats.consumeDropped.Add(1)
			s.warnCut("event from the stream not delivered to this instance's listeners", "error", err, "seq", d.Seq)
		}
		return
	}
	// The stamp is when the event entered this instance's fan-out, on this
	// machine's clock (the stream's storage time is on the NATS server's).
	s.ring.Commit(res, fanout.Message{Data: frame, Key: ep.space.key(d.Seq), Stamp: time.Now().UnixNano(), Event: event})
}

// consumedFrame appends to dst the frame of a message read from the stream,
// numbered in space sp, after checking it as a POST is checked: a valid
// topic (a message whose subject is not under the prefix has none), a valid
// event name other than the service's own "gap", and a JSON object (strict,
// compacted, as a POST's body is). It returns the frame, the event's JSON
// within it and the event's topic, or ok false for a message that fails
// (dst unchanged).
func consumedFrame(dst []byte, sp *idSpace, d natsbridge.Delivery) (frame, event []byte, topic string, ok bool) {
	if !natsbridge.ValidTopic(d.Topic) {
		return dst, nil, "", false
	}
	if d.Event != "" && (len(d.Event) > maxNameLen || !validNameString(d.Event) || d.Event == "gap") {
		return dst, nil, "", false
	}
	head := frameHead{topic: d.Topic, event: []byte(d.Event)}
	if dst == nil {
		dst = make([]byte, 0, head.room()+len(d.Data)+len(frameEnd))
	}
	start := len(dst)
	out := head.appendTo(dst, sp, d.Seq)
	body := len(out)
	out, err := jsontext.AppendFormat(out, d.Data, formatOptions...)
	if err != nil || len(out) == body || out[body] != '{' {
		return dst[:start], nil, "", false
	}
	end := len(out)
	out = append(out, frameEnd...)
	return out, out[body:end], d.Topic, true
}

// validNameString is validName for a string, without converting it.
func validNameString(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := range len(s) {
		if !nameChar(s[i]) {
			return false
		}
	}
	return true
}

// newEpoch makes id the current stream incarnation, with a new id space.
// The caller holds consumer.mu.
func (s *Server) newEpoch(id natsbridge.Identity) *epoch {
	s.consumer.ordinal++
	ep := &epoch{space: newStreamSpace(id.Created.UnixNano(), s.consumer.ordinal), identity: id}
	if old := s.epoch.Load(); !old.identity.IsZero() {
		ep.prev = &epoch{space: old.space, identity: old.identity}
	}
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

// consumed returns the first and last sequences this instance consumed from
// ep's stream, 0 and 0 if none (or ep is no longer current).
func (s *Server) consumed(ep *epoch) (first, last uint64) {
	s.consumer.mu.Lock()
	defer s.consumer.mu.Unlock()
	if s.epoch.Load() != ep || s.consumer.lastSeq == 0 {
		return 0, 0
	}
	return s.consumer.firstSeq, s.consumer.lastSeq
}

// publishGap publishes a broadcast gap event, for every listener whatever its
// topics. Like every gap event it has no id; its ring key is that of
// sequence seq in ep's space (the last sequence before the gap), so that
// keys keep increasing in the ring.
func (s *Server) publishGap(ep *epoch, seq uint64) {
	res, err := s.ring.Reserve("", 1)
	if err != nil {
		return
	}
	frame := appendGap(nil, 0, false)
	s.ring.Commit(res, fanout.Message{Data: frame, Key: ep.space.key(seq), Stamp: time.Now().UnixNano()})
}

package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
)

// Publishing to the shared stream.
//
// An Idempotency-Key names a single event, or the lines of a batch by their
// position: natsbridge.EventMsgID and BatchMsgID give them message ids in
// separate namespaces. With a key, each message also carries a fingerprint
// of what the producer sent (the topic, the event name and the body or line,
// byte for byte): JetStream acknowledges a message whose id is in its
// duplicate window without storing it again, and the bridge compares the
// fingerprint of the message stored first, so that a retry (the same
// request) is answered as the first one was, and a key reused for another
// event is answered 409 Conflict.

// publishShared publishes an event to the shared stream and waits for its
// acknowledgement. raw is the body as the producer sent it. An event stored
// is counted as accepted; a duplicate of one stored before is not.
func (s *Server) publishShared(ctx *fasthttp.RequestCtx, in input, seg, raw []byte) error {
	m := natsbridge.Message{Topic: in.head.topic, Event: string(in.head.event), Data: seg[in.room:]}
	if key := ctx.Request.Header.Peek("Idempotency-Key"); len(key) > 0 {
		m.MsgID = natsbridge.EventMsgID(string(key))
		m.Fingerprint = fingerprint(in.head, raw)
	}
	ack, err := s.bridge.Publish(ctx, m)
	if err != nil {
		return s.withStoredID(err, ack)
	}
	if !ack.Duplicate {
		s.stats.accepted.Add(1)
	}
	return nil
}

// publishSharedBatch publishes a batch to the shared stream and returns how
// many of its events, from the first, JetStream acknowledged. Events stored
// are counted as accepted; duplicates of events stored before are not.
// topics, when not nil, are the events' own topics (-topic-field).
func (s *Server) publishSharedBatch(ctx *fasthttp.RequestCtx, in input, segs [][]byte, body []byte, topics []string) (int, error) {
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	msgs := make([]natsbridge.Message, len(segs))
	rest := body
	for i, seg := range segs {
		msgs[i] = natsbridge.Message{Topic: in.head.topic, Event: string(in.head.event), Data: seg[in.room:]}
		if topics != nil {
			msgs[i].Topic = topics[i]
		}
		if key != "" {
			// The lines parseBatch made segs of, in the same order.
			var line []byte
			for line == nil && len(rest) > 0 {
				line, rest = nextLine(rest)
			}
			msgs[i].MsgID = natsbridge.BatchMsgID(key, i)
			msgs[i].Fingerprint = fingerprint(in.head, line)
		}
	}
	ack, err := s.bridge.PublishBatch(ctx, msgs)
	s.stats.accepted.Add(uint64(ack.Acked - ack.Duplicates))
	if errors.Is(err, natsbridge.ErrIDReused) {
		err = &errKeyReused{what: "batch", err: err}
	}
	return ack.Acked, err
}

// fingerprint identifies what a producer sent for one event: its topic, its
// event name and its body (or batch line), byte for byte. 128 bits of
// SHA-256, in hex.
func fingerprint(h frameHead, raw []byte) string {
	d := sha256.New()
	d.Write([]byte(h.topic))
	d.Write([]byte{0})
	d.Write(h.event)
	d.Write([]byte{0})
	d.Write(raw)
	var sum [sha256.Size]byte
	return hex.EncodeToString(d.Sum(sum[:0])[:16])
}

// errKeyReused wraps natsbridge.ErrIDReused with the id of the event stored
// first with the key.
type errKeyReused struct {
	what string // "event" or "batch"
	id   string // the event's id; "" when unknown
	err  error
}

func (e *errKeyReused) Error() string {
	if e.id == "" {
		return "Idempotency-Key already used for another " + e.what
	}
	return "Idempotency-Key already used for another " + e.what + " (id " + e.id + ")"
}

func (e *errKeyReused) Unwrap() error { return e.err }

// withStoredID gives a reused key's error the id of the event stored first.
func (s *Server) withStoredID(err error, ack natsbridge.Ack) error {
	if !errors.Is(err, natsbridge.ErrIDReused) {
		return err
	}
	e := &errKeyReused{what: "event", err: err}
	if ep := s.epoch.Load(); !ep.identity.IsZero() && ack.Seq > 0 {
		e.id = string(ep.space.appendID(nil, ack.Seq))
	}
	return e
}

// refuseShared maps a bridge error to an answer.
func (s *Server) refuseShared(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, natsbridge.ErrInvalidMessage):
		s.reject(ctx, RejectInvalid, fasthttp.StatusBadRequest, err.Error())
	case errors.Is(err, natsbridge.ErrIDReused):
		msg := err.Error()
		var e *errKeyReused
		if errors.As(err, &e) {
			msg = e.Error()
		}
		s.reject(ctx, RejectConflict, fasthttp.StatusConflict, msg)
	case errors.Is(err, natsbridge.ErrRejected):
		s.reject(ctx, RejectTooLarge, fasthttp.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, natsbridge.ErrClosed):
		ctx.SetConnectionClose()
		s.reject(ctx, RejectShuttingDown, fasthttp.StatusServiceUnavailable, "shutting down")
	default:
		// Unavailable (NATS unreachable, the stream without a leader, no
		// acknowledgement in time): the event may or may not be stored; a
		// retry with the same Idempotency-Key is safe.
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		s.reject(ctx, RejectUnavailable, fasthttp.StatusServiceUnavailable,
			"cannot share the event with the other instances: "+err.Error())
	}
}

// refuseSharedBatch answers a batch whose first acked events are stored (and
// will be broadcast) and the others may be, or not: a retry with the same
// Idempotency-Key stores each at most once.
func (s *Server) refuseSharedBatch(ctx *fasthttp.RequestCtx, err error, acked int) {
	s.refuseShared(ctx, err)
	msg := err.Error()
	var e *errKeyReused
	if errors.As(err, &e) {
		msg = e.Error()
	}
	ctx.SetBody(fmt.Appendf(nil, `{"error":%s,"accepted":%d}`, appendJSONString(nil, msg), acked))
}

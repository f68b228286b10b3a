package natsbridge

// The live consumer. nats.go has an ordered consumer (jetstream.OrderedConsumer)
// that recreates its server-side consumer after trouble, resuming after the
// last sequence it saw; it is not used here because it cannot tell that the
// stream itself was replaced: after a memory stream is lost and created again,
// it would resume the new incarnation at the old sequence and skip its first
// messages, and a message could not be attributed to an incarnation. This file
// does the same job with the incarnation in view:
//
//   - the supervisor (run) owns a cursor: the stream Identity it reads and the
//     next sequence to deliver;
//   - each session makes sure the stream exists, moves the cursor to sequence 1
//     of a new incarnation (or, at the first start, past the stream's last
//     message), creates an ephemeral consumer at the cursor (no acks, in
//     memory, one replica: cheap to throw away), checks that the stream is
//     still the same incarnation after the consumer was created (so every
//     message the consumer delivers belongs to it), and reads;
//   - any trouble ends the session: a reconnect or disconnect (the handlers
//     stop the iterator), missing heartbeats (the consumer or its server is
//     gone), a gap in the consumer's own sequence (a message dropped on the
//     client), an error from the server. The next session resumes at the
//     cursor, so nothing is delivered twice and nothing still stored is missed.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

const (
	// Pull tuning: up to pullBatch messages in flight; the server sends a
	// heartbeat every pullHeartbeat when idle, and two missed ones end the
	// session.
	pullBatch     = 512
	pullExpiry    = 10 * time.Second
	pullHeartbeat = time.Second
	// consumerInactive is how long the server keeps a consumer nobody pulls
	// from: it cleans up after a bridge that died.
	consumerInactive = time.Minute
	// retry delays between sessions that failed: from retryShort, doubled
	// after each failure up to retryLong. A request that got no answer is
	// retried as soon as its (short) timeout passed.
	retryShort    = 100 * time.Millisecond
	retryLong     = time.Second
	retryConflict = 5 * time.Second
	// cleanupTimeout bounds deleting a consumer that is no longer used.
	cleanupTimeout = time.Second
)

// errGap ends a session whose consumer skipped one of its own sequences.
var errGap = errors.New("natsbridge: consumer sequence gap")

// errIncarnation ends a session whose stream was replaced while its consumer
// was being created.
var errIncarnation = errors.New("natsbridge: stream replaced during consumer creation")

// cursor is where the live consumer stands: the incarnation it reads, the
// next sequence to hand to the handler (0 before the first start), and when
// the last one handed over was stored.
type cursor struct {
	lastStored time.Time
	id         Identity
	next       uint64
}

// run is the supervisor: one goroutine, started by Start, that runs sessions
// until Close. It alone calls the handler.
func (b *Bridge) run() {
	defer close(b.done)
	var cur cursor
	delay := time.Duration(0)
	for !b.closing.Load() {
		if delay > 0 && !b.pause(delay) {
			return
		}
		if !b.nc.IsConnected() {
			// The connection handlers wake the supervisor (pause) as
			// soon as the client is connected again.
			b.setTrouble(StateJoining, b.notConnectedReason())
			delay = retryLong
			continue
		}
		err := b.session(&cur)
		if b.closing.Load() {
			return
		}
		switch {
		case err == nil:
			delay = 0
		case isDefinite(err):
			b.ready.Store(false)
			b.cannotPublish(0, err.Error(), false)
			b.setTrouble(StateConflict, err.Error())
			b.log.Error("nats stream unusable", "stream", b.cfg.Stream, "err", err)
			select {
			case b.fatal <- err:
			default:
			}
			delay = retryConflict
		default:
			b.stats.resets.Add(1)
			b.log.Info("nats consumer reset", "stream", b.cfg.Stream, "next", cur.next, "err", err)
			if delay == 0 {
				delay = retryShort
			} else {
				delay = min(2*delay, retryLong)
			}
			if errors.Is(err, errGap) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
				errors.Is(err, jetstream.ErrMsgIteratorClosed) || errTimeoutLike(err) {
				delay = retryShort // come back quickly: the request timed out already
			}
		}
	}
}

// pause waits for d, a wake-up signal or Close; it returns false on Close.
func (b *Bridge) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.wake:
	case <-b.ctx.Done():
	}
	return !b.closing.Load()
}

func (b *Bridge) notConnectedReason() string {
	if err := b.nc.LastError(); err != nil {
		return "not connected: " + err.Error()
	}
	return "not connected"
}

// session joins the stream at the cursor and consumes until something goes
// wrong or Close drains it. Errors other than ErrConflict and ErrNoJetStream
// are worth retrying.
func (b *Bridge) session(cur *cursor) error {
	b.mu.Lock()
	b.resetAsked = false
	b.mu.Unlock()

	info, err := b.ensureStream()
	if err != nil {
		if !isDefinite(err) {
			b.setTrouble(StateJoining, err.Error())
		}
		return err
	}
	id := identityOf(info)
	switch {
	case cur.id.IsZero():
		cur.next = info.State.LastSeq + 1
	case !id.Equal(cur.id):
		b.stats.streamResets.Add(1)
		b.log.Warn("nats stream is a new incarnation, reading it from its start",
			"stream", id.Stream, "old", cur.id.String(), "new", id.String(),
			"old_last_seq", cur.next-1)
		cur.next = 1
	case b.wentBack(info, cur):
		b.stats.streamResets.Add(1)
		b.log.Error("nats stream lost its messages and kept its identity, reading it from its start",
			"stream", id.Stream, "identity", id.String(), "old_last_seq", cur.next-1,
			"last_seq", info.State.LastSeq)
		cur.next = 1
	}
	cur.id = id
	b.mu.Lock()
	b.identity = id
	b.nextSeq.Store(cur.next)
	b.mu.Unlock()
	b.atomicBatch.Store(info.Config.AllowAtomicPublish)

	cons, err := b.createConsumer(cur)
	if err != nil {
		b.setTrouble(StateJoining, err.Error())
		return err
	}
	defer b.deleteConsumer(cons)
	b.setJoined(cur.id, info.Cluster == nil || info.Cluster.Leader != "")
	return b.consume(cons, cur)
}

// wentBack tells whether the stream, still the incarnation cur reads, lost
// the messages cur has read. JetStream keeps a clustered stream's creation
// time in its assignment, so a stream kept in memory whose every replica
// restarted comes back empty with the same identity and counts again from 1.
// It shows as a last sequence below what was delivered, or, once it has grown
// past it, as another message at the last delivered sequence.
func (b *Bridge) wentBack(info *jetstream.StreamInfo, cur *cursor) bool {
	if cur.next <= 1 {
		return false
	}
	last := cur.next - 1
	if info.State.LastSeq < last {
		return true
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.apiTimeout())
	defer cancel()
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		return false // the consumer creation that follows fails the same way
	}
	m, err := s.GetMsg(ctx, last)
	return err == nil && !m.Time.Equal(cur.lastStored)
}

// createConsumer creates an ephemeral consumer at cur.next and checks that the
// stream was incarnation cur.id all along.
func (b *Bridge) createConsumer(cur *cursor) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.apiTimeout())
	defer cancel()
	cons, err := b.js.CreateConsumer(ctx, b.cfg.Stream, jetstream.ConsumerConfig{
		Name:              "pillarbox_" + nuid.Next(),
		Description:       "natsbridge live consumer of " + b.cfg.Name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       cur.next,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: consumerInactive,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	// The stream was cur.id before the consumer was created (ensureStream)
	// and is still cur.id now: an incarnation never comes back, so the
	// consumer was created on it and everything it delivers comes from it.
	info, err := b.streamInfo(ctx)
	if err == nil && !identityOf(info).Equal(cur.id) {
		err = errIncarnation
	}
	if err != nil {
		b.deleteConsumer(cons)
		return nil, err
	}
	return cons, nil
}

// deleteConsumer removes a consumer that is no longer read, if the connection
// allows; the server removes it anyway after consumerInactive.
func (b *Bridge) deleteConsumer(cons jetstream.Consumer) {
	if !b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = b.js.DeleteConsumer(ctx, b.cfg.Stream, cons.CachedInfo().Name)
}

// consume hands the consumer's messages to the handler until the iterator
// fails or is stopped (reset) or drained (Close).
func (b *Bridge) consume(cons jetstream.Consumer, cur *cursor) error {
	it, err := cons.Messages(
		jetstream.PullMaxMessages(pullBatch),
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	b.mu.Lock()
	switch {
	case b.closing.Load():
		it.Drain()
	case b.resetAsked:
		it.Stop()
	}
	b.iter = it
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.iter = nil
		b.mu.Unlock()
		it.Stop()
	}()

	var dseq uint64 // the consumer's own sequence: 1, 2, 3... without gaps
	for {
		msg, err := it.Next()
		if err != nil {
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		if meta.Sequence.Consumer != dseq+1 {
			return fmt.Errorf("%w: got %d after %d", errGap, meta.Sequence.Consumer, dseq)
		}
		dseq = meta.Sequence.Consumer
		seq := meta.Sequence.Stream
		if seq < cur.next {
			continue // delivered before; cannot happen with a consumer started at cur.next
		}
		if seq > cur.next {
			b.stats.skipped.Add(seq - cur.next)
		}
		b.handler(b.delivery(cur.id, msg, meta))
		cur.next, cur.lastStored = seq+1, meta.Timestamp
		b.lastSeq.Store(seq)
		b.nextSeq.Store(seq + 1)
		b.stats.consumed.Add(1)
	}
}

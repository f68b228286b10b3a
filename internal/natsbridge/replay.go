package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/topic"
)

// replayBatch is how many messages a replay asks for at a time.
const replayBatch = 256

// Replay reads the stream in order from a sequence on, for one listener that
// resumes from an event older than what its instance holds, or from an event
// the instance has not consumed yet. Open it with OpenReplay; read it with
// Next; Close it.
//
// A Replay does not end at the stream's last message: it goes on with the
// messages stored after it was opened, as a live consumer would, until it is
// closed. Its caller decides when the listener's instance has caught up with
// it (see CaughtUp) and closes it.
//
// A Replay is not safe for concurrent use: one goroutine reads it. It holds
// one of the bridge's replay slots (at most four replays are open at once)
// and a short-lived consumer on the server until Close.
type Replay struct {
	b        *Bridge
	cons     jetstream.Consumer        // nil until the first Next (or when nothing is stored)
	it       jetstream.MessagesContext // nil until the first Next
	release  func()
	id       Identity
	name     string // the consumer's: a start retried creates no second one
	filters  []string
	from     uint64 // the next sequence to read
	first    uint64
	last     uint64
	gone     uint64
	dseq     uint64 // the consumer's own sequence of the last message read
	caughtUp bool
}

// OpenReplay opens a read of the stream incarnation id from sequence from on,
// of the messages on topics (every topic when topics is empty), each a topic
// name or a pattern ([topic.ValidPattern]: its wildcards are the subject
// wildcards of the consumer's filter, which delivers each message once). It
// asks the stream where it stands, and creates no consumer until Next needs
// one.
//
// It fails with ErrAhead when from-1 is beyond the stream's last sequence (an
// id the stream never gave out), ErrStreamChanged when the stream is not the
// incarnation id, ErrInvalidMessage for an invalid topic, ErrUnavailable
// when the bridge cannot publish now or the stream does not answer in time
// (within ctx, and at most Config.PublishTimeout), ErrClosed after Close. A
// replay slot is awaited within ctx.
func (b *Bridge) OpenReplay(ctx context.Context, id Identity, from uint64, topics []string) (*Replay, error) {
	r := &Replay{b: b, id: id, from: max(from, 1), name: "pillarbox_replay_" + nuid.Next()}
	for i, t := range topics {
		if !topic.ValidPattern(t) {
			return nil, fmt.Errorf("%w: topic %q", ErrInvalidMessage, t)
		}
		if !coveredByOther(topics, i) {
			r.filters = append(r.filters, Subject(b.cfg.Subject, t))
		}
	}
	if err := b.canPublish(ctx); err != nil {
		return nil, err
	}
	select {
	case b.replaySlots <- struct{}{}:
		r.release = func() { <-b.replaySlots }
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: replay: %w", ErrUnavailable, ctx.Err())
	}
	actx, cancel := context.WithTimeout(ctx, b.apiTimeout())
	defer cancel()
	info, err := b.streamInfo(actx)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	if !identityOf(info).Equal(id) {
		r.Close()
		return nil, fmt.Errorf("%w: asked for %s, stream is %s", ErrStreamChanged, id, identityOf(info))
	}
	r.first, r.last = info.State.FirstSeq, info.State.LastSeq
	if r.last == 0 {
		r.first = 1 // nothing stored yet: nothing is gone either
	}
	if r.from-1 > r.last {
		r.Close()
		return nil, fmt.Errorf("%w: sequence %d, stream at %d", ErrAhead, r.from-1, r.last)
	}
	if r.from < r.first {
		r.gone = r.first - r.from
		r.from = r.first
	}
	r.caughtUp = r.from > r.last
	return r, nil
}

// coveredByOther tells whether topics[i] is matched by another of topics, or
// is a repeat: JetStream refuses a filter subject that is a subset of
// another one.
func coveredByOther(topics []string, i int) bool {
	t := topics[i]
	if slices.Contains(topics[:i], t) {
		return true
	}
	for j, u := range topics {
		// Of two that match the same topics, the first is kept.
		if u != t && topic.Covers([]string{u}, t) && (j < i || !topic.Covers([]string{t}, u)) {
			return true
		}
	}
	return false
}

// Gone returns how many sequences from the one OpenReplay was given were no
// longer in the stream (removed, expired) when it was opened.
func (r *Replay) Gone() uint64 { return r.gone }

// CaughtUp tells whether the replay has read, of its topics, every message the
// stream held at some moment after OpenReplay was called: when nothing was
// stored from its start on, or when the last message Next returned was the
// last of its topics in the stream at the time the server sent it.
func (r *Replay) CaughtUp() bool { return r.caughtUp }

// Next returns the next message of the replay's topics, waiting for it
// within ctx: a replay that has caught up waits for the next message stored.
// It returns ctx's error when ctx ends first (the replay goes on: call Next
// again); ErrCaughtUp, once, when the replay's consumer starts (at the first
// call) with nothing to read; ErrUnavailable or ErrStreamChanged when the
// stream cannot be read (the replay is over); ErrClosed after the bridge's
// Close. Messages that expire while the replay runs are passed over
// (Delivery.Seq jumps). The first call creates the replay's consumer: that
// waits for the server up to the bridge's API timeout, whatever ctx says.
func (r *Replay) Next(ctx context.Context) (Delivery, error) {
	b := r.b
	if r.it == nil {
		if err := r.start(); err != nil {
			return Delivery{}, err
		}
		if r.caughtUp {
			return Delivery{}, ErrCaughtUp
		}
	}
	msg, err := r.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		switch {
		case b.closing.Load():
			return Delivery{}, ErrClosed
		case ctx.Err() != nil:
			return Delivery{}, ctx.Err()
		}
		return Delivery{}, fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		return Delivery{}, fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	if meta.Sequence.Consumer != r.dseq+1 {
		return Delivery{}, fmt.Errorf("%w: replay: %w", ErrUnavailable, errGap)
	}
	r.dseq = meta.Sequence.Consumer
	r.caughtUp = meta.NumPending == 0
	b.stats.replayed.Add(1)
	return b.delivery(r.id, msg, meta), nil
}

// start creates the replay's consumer at its start, and checks that the stream
// was the replay's incarnation all along. It waits for the server up to the
// API timeout whatever the deadline of Next's caller, who may poll with
// short ones: a creation given up on the client's side may still succeed on
// the server's, and each retry would leave a consumer behind (a stream holds
// at most 1,000 by default).
func (r *Replay) start() error {
	b := r.b
	if b.closing.Load() {
		return ErrClosed
	}
	actx, cancel := context.WithTimeout(b.probeCtx, b.apiTimeout())
	defer cancel()
	cons, err := b.js.CreateConsumer(actx, b.cfg.Stream, jetstream.ConsumerConfig{
		Name:              r.name,
		Description:       "natsbridge replay of " + b.cfg.Name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.from,
		FilterSubjects:    r.filters,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: consumerInactive,
	})
	if err != nil {
		return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	r.cons = cons
	r.caughtUp = r.caughtUp || cons.CachedInfo().NumPending == 0
	// As for the live consumer: still the same incarnation after creating it.
	info, err := b.streamInfo(actx)
	if err != nil {
		return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	if !identityOf(info).Equal(r.id) {
		return fmt.Errorf("%w: asked for %s, stream is %s", ErrStreamChanged, r.id, identityOf(info))
	}
	it, err := cons.Messages(
		jetstream.PullMaxMessages(replayBatch),
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	r.it = it
	return nil
}

// Close ends the replay: its consumer is deleted and its slot released. It is
// idempotent.
func (r *Replay) Close() {
	if r.it != nil {
		r.it.Stop()
		r.it = nil
	}
	if r.cons != nil {
		r.b.deleteConsumer(r.cons)
		r.cons = nil
	}
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// delivery makes the Delivery of a message read from the stream incarnation
// id. The topic is empty when the subject is not <prefix>.<valid topic>.
func (b *Bridge) delivery(id Identity, msg jetstream.Msg, meta *jetstream.MsgMetadata) Delivery {
	topic, ok := TopicOf(b.cfg.Subject, msg.Subject())
	if !ok {
		topic = ""
	}
	return Delivery{
		Identity: id,
		Stored:   meta.Timestamp,
		Topic:    topic,
		Event:    msg.Headers().Get(EventHeader),
		Data:     msg.Data(),
		Seq:      meta.Sequence.Stream,
	}
}

// errTimeoutLike tells whether err is a request that got no answer in time.
func errTimeoutLike(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

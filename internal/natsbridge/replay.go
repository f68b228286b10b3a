package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// replayBatch is how many messages a replay asks for at a time.
const replayBatch = 256

// FirstSeq returns the stream's first stored sequence (1 when nothing is
// stored): sequences below it are gone. It fails with ErrStreamChanged when
// the stream is not the incarnation id, and with ErrUnavailable when the
// bridge is not joined or the stream does not answer within
// Config.PublishTimeout.
func (b *Bridge) FirstSeq(ctx context.Context, id Identity) (uint64, error) {
	if err := b.canPublish(ctx); err != nil {
		return 0, err
	}
	actx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	info, err := b.streamInfo(actx)
	if err != nil {
		return 0, fmt.Errorf("%w: stream info: %w", ErrUnavailable, err)
	}
	if !identityOf(info).Equal(id) {
		return 0, fmt.Errorf("%w: asked for %s, stream is %s", ErrStreamChanged, id, identityOf(info))
	}
	if info.State.LastSeq == 0 {
		return 1, nil
	}
	return info.State.FirstSeq, nil
}

// Replay hands fn, in stream order, the messages stored in the stream with
// sequences in [from, to) and, when topics is not empty, a topic in topics.
// It returns gone, how many sequences at the start of the range are older than
// the stream's first sequence (removed, expired): from+gone is the first
// sequence that could still be delivered.
//
// id is the incarnation the sequences belong to: when the stream is another
// one, Replay returns ErrStreamChanged and calls fn for nothing. The range
// ends at the stream's last sequence when Replay starts: later messages are
// for the live consumer. Messages that expire while Replay runs are skipped
// (Delivery.Seq jumps). from 0 counts as 1; from >= to replays nothing.
//
// fn is called from Replay's goroutine; an error from fn stops the replay and
// is returned as it is. Replay reads with its own short-lived consumer and
// does not disturb the live one; at most four run at once (the others wait,
// within ctx). It fails with ErrUnavailable when the bridge is not joined or
// a message does not come within Config.PublishTimeout, with
// ErrInvalidMessage for an invalid topic, and with ErrClosed after Close.
// ctx bounds the whole call.
func (b *Bridge) Replay(ctx context.Context, id Identity, from, to uint64, topics []string,
	fn func(Delivery) error) (gone uint64, err error) {
	for _, t := range topics {
		if !ValidTopic(t) {
			return 0, fmt.Errorf("%w: topic %q", ErrInvalidMessage, t)
		}
	}
	from = max(from, 1)
	if from >= to {
		return 0, nil
	}
	if err := b.canPublish(ctx); err != nil {
		return 0, err
	}
	select {
	case b.replaySlots <- struct{}{}:
		defer func() { <-b.replaySlots }()
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: replay: %w", ErrUnavailable, ctx.Err())
	}

	actx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	info, err := b.streamInfo(actx)
	if err != nil {
		return 0, fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	if !identityOf(info).Equal(id) {
		return 0, fmt.Errorf("%w: asked for %s, stream is %s", ErrStreamChanged, id, identityOf(info))
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if last == 0 {
		first = 1 // nothing stored yet: nothing is gone either
	}
	if from < first {
		gone = min(to, first) - from
	}
	start, end := max(from, first), min(to, last+1)
	if start >= end {
		return gone, nil
	}

	cfg := jetstream.ConsumerConfig{
		Name:              "pillarbox_replay_" + nuid.Next(),
		Description:       "natsbridge replay of " + b.cfg.Name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: consumerInactive,
	}
	for _, t := range topics {
		if s := Subject(b.cfg.Subject, t); !slices.Contains(cfg.FilterSubjects, s) {
			cfg.FilterSubjects = append(cfg.FilterSubjects, s)
		}
	}
	cons, err := b.js.CreateConsumer(actx, b.cfg.Stream, cfg)
	if err != nil {
		return gone, fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	defer b.deleteConsumer(cons)
	// As for the live consumer: still the same incarnation after creating it.
	if info, err = b.streamInfo(actx); err != nil {
		return gone, fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	if !identityOf(info).Equal(id) {
		return gone, fmt.Errorf("%w: asked for %s, stream is %s", ErrStreamChanged, id, identityOf(info))
	}
	if cons.CachedInfo().NumPending == 0 {
		return gone, nil // no message of these topics from start on
	}
	return gone, b.replayRead(ctx, cons, id, end, fn)
}

// replayRead hands fn the consumer's messages below end.
func (b *Bridge) replayRead(ctx context.Context, cons jetstream.Consumer, id Identity, end uint64, fn func(Delivery) error) error {
	it, err := cons.Messages(
		jetstream.PullMaxMessages(replayBatch),
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
	}
	defer it.Stop()
	var dseq uint64
	for {
		nctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
		msg, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if b.closing.Load() {
				return ErrClosed
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				err = fmt.Errorf("no message within %v: %w", b.cfg.PublishTimeout, err)
			}
			return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("%w: replay: %w", ErrUnavailable, err)
		}
		if meta.Sequence.Consumer != dseq+1 {
			return fmt.Errorf("%w: replay: %w", ErrUnavailable, errGap)
		}
		dseq = meta.Sequence.Consumer
		seq := meta.Sequence.Stream
		if seq >= end {
			return nil
		}
		if err := fn(b.delivery(id, msg, meta)); err != nil {
			return err
		}
		b.stats.replayed.Add(1)
		if seq+1 >= end || meta.NumPending == 0 {
			return nil
		}
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

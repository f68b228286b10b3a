package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dupRetries bounds retries of a publish whose message id is being stored by
// another publish at that moment (clustered streams answer "in process").
const dupRetries = 5

// Publish stores one event in the stream and returns its stream sequence once
// JetStream acknowledged it (stored, and replicated as the stream requires).
// A message whose MsgID is already in the stream's duplicate window is not
// stored again: Publish then returns the sequence of the first one.
//
// Publish is safe for concurrent use and pipelined: calls from many goroutines
// share the connection, each waiting only for its own acknowledgement. It
// fails at once with ErrUnavailable while the bridge is not joined to the
// stream (NATS down, stream being recreated), with ErrInvalidMessage for an
// invalid message (nothing sent), ErrRejected when JetStream refuses the
// message for good, and ErrClosed after Close. It waits at most
// Config.PublishTimeout for the acknowledgement, less if ctx ends first; on
// such a timeout the message may still be stored (ErrUnavailable: retry with
// the same MsgID). It allocates the NATS message and its headers.
func (b *Bridge) Publish(ctx context.Context, m Message) (uint64, error) {
	if err := checkMessage(&m); err != nil {
		b.stats.publishFailed.Add(1)
		return 0, err
	}
	if err := b.canPublish(ctx); err != nil {
		b.stats.publishFailed.Add(1)
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		ack, err := b.await(ctx, b.send(&m))
		if err == nil {
			b.countAck(ack)
			return ack.Sequence, nil
		}
		var apiErr *jetstream.APIError
		if attempt < dupRetries && errors.As(err, &apiErr) && apiErr.ErrorCode == codeDuplicateInProcess &&
			sleepCtx(ctx, time.Duration(attempt+1)*20*time.Millisecond) {
			continue
		}
		b.stats.publishFailed.Add(1)
		return 0, b.publishErr(err)
	}
}

// canPublish returns nil when publishes may be sent.
func (b *Bridge) canPublish(ctx context.Context) error {
	if b.closing.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if !b.ready.Load() {
		return fmt.Errorf("%w: %s", ErrUnavailable, b.Status().Reason)
	}
	return nil
}

// sent is a publish under way: its future, or the error that stopped it.
type sent struct {
	paf jetstream.PubAckFuture
	err error
}

// send publishes m without waiting for its acknowledgement.
func (b *Bridge) send(m *Message) sent {
	paf, err := b.js.PublishMsgAsync(b.natsMsg(m), jetstream.WithStallWait(stallWait))
	return sent{paf: paf, err: err}
}

// await waits for the acknowledgement of s, or ctx.
func (b *Bridge) await(ctx context.Context, s sent) (*jetstream.PubAck, error) {
	if s.err != nil {
		return nil, s.err
	}
	select {
	case ack := <-s.paf.Ok():
		return ack, nil
	case err := <-s.paf.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (b *Bridge) countAck(ack *jetstream.PubAck) {
	if ack.Duplicate {
		b.stats.duplicates.Add(1)
	} else {
		b.stats.published.Add(1)
	}
}

// natsMsg builds the NATS message of m: subject <prefix>.<topic>, the event
// name and message id as headers, the payload as it is.
func (b *Bridge) natsMsg(m *Message) *nats.Msg {
	topic := m.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	msg := &nats.Msg{Subject: Subject(b.cfg.Subject, topic), Data: m.Data}
	if m.Event != "" || m.MsgID != "" {
		msg.Header = make(nats.Header, 2)
		if m.Event != "" {
			msg.Header.Set(EventHeader, m.Event)
		}
		if m.MsgID != "" {
			msg.Header.Set(jetstream.MsgIDHeader, m.MsgID)
		}
	}
	return msg
}

// publishErr sorts a publish failure into ErrRejected (JetStream refused the
// message for good), ErrClosed, or ErrUnavailable (everything else: not
// connected, no acknowledgement in time, no stream answering, too many
// publishes in flight).
func (b *Bridge) publishErr(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case b.closing.Load():
		return fmt.Errorf("%w: %w", ErrClosed, err)
	case errors.As(err, &apiErr) && apiErr.Code >= 400 && apiErr.Code < 500 && apiErr.ErrorCode != codeDuplicateInProcess:
		return fmt.Errorf("%w: %w", ErrRejected, err)
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, nats.ErrBadSubject):
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// sleepCtx sleeps for d unless ctx ends first; it reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

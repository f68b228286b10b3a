package natsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// dupRetries bounds retries of a publish whose message id is being stored by
// another publish at that moment (clustered streams answer "in process").
const dupRetries = 5

// Ack is JetStream's acknowledgement of a published message.
type Ack struct {
	// Seq is the message's stream sequence; for a duplicate, the sequence of
	// the message stored first with the same id.
	Seq uint64
	// Duplicate tells that a message with the same id was in the stream's
	// duplicate window: nothing was stored.
	Duplicate bool
}

// Publish stores one event in the stream and returns JetStream's
// acknowledgement once the message is stored (and replicated as the stream
// requires). A message whose MsgID is already in the stream's duplicate
// window is not stored again: Publish then returns the first one's sequence
// with Ack.Duplicate set, or, when both carry a Fingerprint and they differ,
// ErrIDReused (with that Ack).
//
// Publish is safe for concurrent use and pipelined: calls from many goroutines
// share the connection, each waiting only for its own acknowledgement. It
// fails at once with ErrUnavailable while the bridge cannot publish (NATS
// unreachable, the stream without a leader or not answering: see health.go),
// with ErrInvalidMessage for an invalid message (nothing sent), ErrRejected
// when JetStream refuses the message for good, and ErrClosed after Close. It
// waits at most Config.PublishTimeout for the acknowledgement, less if ctx
// ends first; on such a timeout the message may still be stored
// (ErrUnavailable: retry with the same MsgID), and the bridge stops
// publishing until the stream answers again. It allocates the NATS message
// and its headers.
func (b *Bridge) Publish(ctx context.Context, m Message) (Ack, error) {
	if err := checkMessage(&m); err != nil {
		b.stats.publishFailed.Add(1)
		return Ack{}, err
	}
	if err := b.canPublish(ctx); err != nil {
		b.stats.publishFailed.Add(1)
		return Ack{}, err
	}
	for attempt := 0; ; attempt++ {
		s := b.send(&m)
		ack, err := b.await(ctx, s)
		if err == nil {
			return b.acked(ctx, &m, ack)
		}
		var apiErr *jetstream.APIError
		if attempt < dupRetries && errors.As(err, &apiErr) && apiErr.ErrorCode == codeDuplicateInProcess &&
			sleepCtx(ctx, time.Duration(attempt+1)*20*time.Millisecond) {
			continue
		}
		b.stats.publishFailed.Add(1)
		b.publishFailed(s.at, err)
		return Ack{}, b.publishErr(err)
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
	if !b.publishable.Load() {
		return fmt.Errorf("%w: %s", ErrUnavailable, b.Status().PublishReason)
	}
	return nil
}

// sent is a publish under way: its waiter and reply subject, or the error
// that stopped it, when it was sent (Unix ns), and the bridge's down channel
// then.
type sent struct {
	w     *waiter
	err   error
	down  chan struct{}
	reply string
	at    int64
}

// errTooManyPending refuses a publish while maxPending acknowledgements are
// awaited already.
var errTooManyPending = errors.New("natsbridge: too many publishes awaiting their acknowledgement")

// send publishes m without waiting for its acknowledgement (see acks.go). A
// publish that finds no responder (the stream has no leader there) fails as
// soon as the server says so: it is not retried.
func (b *Bridge) send(m *Message) sent {
	s := sent{at: time.Now().UnixNano(), down: *b.down.Load()}
	if b.acks.pending.Load() >= maxPending {
		s.err = errTooManyPending
		return s
	}
	msg := b.natsMsg(m)
	s.w, s.reply = b.acks.register(s.at + int64(b.cfg.PublishTimeout))
	msg.Reply = s.reply
	if err := b.nc.PublishMsg(msg); err != nil {
		b.acks.forget(s.reply)
		s.w, s.err = nil, err
	}
	return s
}

// errStreamDown ends the wait of a publish when the bridge stops being
// publishable meanwhile.
var errStreamDown = errors.New("the stream stopped acknowledging while the publish waited")

// await waits for the acknowledgement of s, or ctx, or the bridge to stop
// being publishable.
func (b *Bridge) await(ctx context.Context, s sent) (*jetstream.PubAck, error) {
	if s.err != nil {
		return nil, s.err
	}
	var err error
	select {
	case r := <-s.w.ch:
		release(s.w)
		if r.err != nil {
			return nil, r.err
		}
		return &r.ack, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.down:
		err = errStreamDown
	}
	// Given up: the waiter is either still registered, or taken by the
	// handler, which is about to send its outcome.
	if id, ok := b.acks.idOf(s.reply); ok && b.acks.take(id) == nil {
		<-s.w.ch
	}
	release(s.w)
	return nil, err
}

// acked counts an acknowledgement of m and checks, for a duplicate, that the
// message stored first is the same event (see Message.Fingerprint).
func (b *Bridge) acked(ctx context.Context, m *Message, pa *jetstream.PubAck) (Ack, error) {
	ack := Ack{Seq: pa.Sequence, Duplicate: pa.Duplicate}
	if !ack.Duplicate {
		b.stats.published.Add(1)
		return ack, nil
	}
	if m.Fingerprint != "" {
		stored, err := b.storedFingerprint(ctx, ack.Seq)
		switch {
		case err != nil:
			return ack, fmt.Errorf("%w: reading the message stored first: %w", ErrUnavailable, err)
		case stored != "" && stored != m.Fingerprint:
			b.stats.conflicts.Add(1)
			return ack, fmt.Errorf("%w: message id %q was stored at sequence %d with another content", ErrIDReused, m.MsgID, ack.Seq)
		}
	}
	b.stats.duplicates.Add(1)
	return ack, nil
}

// storedFingerprint returns the FingerprintHeader of the message stored at
// seq, "" if it has none (stored without one, by an older version).
func (b *Bridge) storedFingerprint(ctx context.Context, seq uint64) (string, error) {
	actx, cancel := context.WithTimeout(ctx, b.apiTimeout())
	defer cancel()
	req := fmt.Appendf(nil, `{"seq":%d}`, seq)
	reply, err := b.nc.RequestWithContext(actx, "$JS.API.STREAM.MSG.GET."+b.cfg.Stream, req)
	if err != nil {
		return "", err
	}
	var resp struct {
		Message *struct {
			Header []byte `json:"hdrs"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return "", err
	}
	if resp.Error != nil {
		return "", resp.Error
	}
	if resp.Message == nil || len(resp.Message.Header) == 0 {
		return "", nil
	}
	h, err := nats.DecodeHeadersMsg(resp.Message.Header)
	if err != nil {
		return "", err
	}
	return h.Get(FingerprintHeader), nil
}

// natsMsg builds the NATS message of m: subject <prefix>.<topic>, the event
// name, message id and fingerprint as headers, the payload as it is.
func (b *Bridge) natsMsg(m *Message) *nats.Msg {
	topic := m.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	msg := &nats.Msg{Subject: Subject(b.cfg.Subject, topic), Data: m.Data}
	if m.Event != "" || m.MsgID != "" {
		msg.Header = make(nats.Header, 3)
		if m.Event != "" {
			msg.Header.Set(EventHeader, m.Event)
		}
		if m.MsgID != "" {
			msg.Header.Set(jetstream.MsgIDHeader, m.MsgID)
			if m.Fingerprint != "" {
				msg.Header.Set(FingerprintHeader, m.Fingerprint)
			}
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

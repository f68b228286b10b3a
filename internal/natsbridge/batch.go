package natsbridge

// Batches. nats.go v1.55.0 has no atomic batch publish (ADR-50, nats-server
// 2.12+); its companion module orbit.go/jetstreamext does, and is used here.
// The server stages an atomic batch and stores all of its messages or none,
// as consecutive sequences, at the commit. Its limits (server defaults):
// 1,000 messages per batch, 50 batches open per stream and 1,000 per server,
// 10 s from the first message to the commit. A message id already in the
// duplicate window rejects the whole batch.
//
// PublishBatch therefore cuts a batch into chunks of at most 1,000 messages
// and publishes them one after the other:
//   - atomically, when the stream allows it (Status.AtomicBatches);
//   - pipelined (every message sent, then every acknowledgement awaited) when
//     it does not (older server), for a chunk of one message, and for a chunk
//     the server rejects because one of its message ids is a duplicate (a
//     retry of a batch that was partly or wholly stored before: pipelined,
//     the duplicates are acknowledged without being stored again, and only
//     the missing messages are stored). A pipelined chunk with message ids
//     has its first message published alone first: when it was stored
//     before with another fingerprint (the key was reused for another
//     batch), the batch fails with ErrIDReused and nothing of the chunk is
//     stored.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// MaxAtomicBatch is the size of the chunks PublishBatch cuts a batch into:
// the largest atomic batch a nats-server accepts by default.
const MaxAtomicBatch = 1000

// BatchAck is JetStream's acknowledgement of a batch, or of its first
// messages.
type BatchAck struct {
	// Acked is how many messages, from the first, are acknowledged (stored,
	// or duplicates of messages stored before).
	Acked int
	// Duplicates is how many of them were duplicates: not stored again.
	Duplicates int
}

// PublishBatch stores msgs in the stream, in order, and returns how many of
// them, from the first, are acknowledged.
//
// It returns Acked == len(msgs) and no error when every message was stored
// (or acknowledged as a duplicate of its MsgID, with the same fingerprint).
// Otherwise it returns the error and Acked < len: msgs[:Acked] are stored;
// msgs[Acked:] may be partly stored or not at all (a chunk whose commit was
// not acknowledged in time may have been committed). Retrying msgs[Acked:]
// (or all of msgs) with the same message ids stores each message at most
// once. Messages of one atomic chunk are stored together, as consecutive
// sequences, or not at all; pipelined messages may interleave with other
// publishers', and a retry after a partial failure may store them out of
// order. A message whose id was stored before with another fingerprint fails
// the batch with ErrIDReused.
//
// Every message is checked before anything is sent (ErrInvalidMessage, acked
// 0). Errors are those of Publish. Safe for concurrent use; ctx bounds the
// whole call, and each acknowledgement is awaited at most
// Config.PublishTimeout. msgs and their Data must not be modified until it
// returns.
func (b *Bridge) PublishBatch(ctx context.Context, msgs []Message) (BatchAck, error) {
	var total BatchAck
	for i := range msgs {
		if err := checkMessage(&msgs[i]); err != nil {
			b.stats.publishFailed.Add(uint64(len(msgs)))
			return total, fmt.Errorf("line %d: %w", i, err)
		}
	}
	if err := b.canPublish(ctx); err != nil {
		b.stats.publishFailed.Add(uint64(len(msgs)))
		return total, err
	}
	for total.Acked < len(msgs) {
		chunk := msgs[total.Acked:min(total.Acked+MaxAtomicBatch, len(msgs))]
		got, err := b.publishChunk(ctx, chunk)
		total.Acked += got.Acked
		total.Duplicates += got.Duplicates
		if err != nil {
			b.stats.publishFailed.Add(uint64(len(msgs) - total.Acked))
			if errors.Is(err, ErrIDReused) {
				return total, err
			}
			return total, b.publishErr(err)
		}
	}
	return total, nil
}

func (b *Bridge) publishChunk(ctx context.Context, chunk []Message) (BatchAck, error) {
	if len(chunk) > 1 && b.atomicBatch.Load() {
		n, fallback, err := b.publishAtomic(ctx, chunk)
		if !fallback {
			return BatchAck{Acked: n}, err
		}
	}
	if len(chunk) > 1 && chunk[0].MsgID != "" {
		// Maybe a retry, maybe another batch reusing the key: the first
		// message tells which before anything else is stored.
		first, err := b.publishPipelined(ctx, chunk[:1])
		if err != nil || first.Acked == 0 {
			return first, err
		}
		rest, err := b.publishPipelined(ctx, chunk[1:])
		return BatchAck{Acked: 1 + rest.Acked, Duplicates: first.Duplicates + rest.Duplicates}, err
	}
	return b.publishPipelined(ctx, chunk)
}

// publishAtomic publishes chunk as one atomic batch. fallback asks the caller
// to publish the chunk pipelined instead (nothing of it was stored by this
// call).
func (b *Bridge) publishAtomic(ctx context.Context, chunk []Message) (acked int, fallback bool, err error) {
	select {
	case b.batchSlots <- struct{}{}:
		defer func() { <-b.batchSlots }()
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	for attempt := 0; ; attempt++ {
		msgs := make([]*nats.Msg, len(chunk))
		for i := range chunk {
			msgs[i] = b.natsMsg(&chunk[i])
			if msgs[i].Header == nil {
				msgs[i].Header = make(nats.Header, 2) // for the batch headers
			}
		}
		sentAt := time.Now().UnixNano()
		cctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
		ack, err := jetstreamext.PublishMsgBatch(cctx, b.js, msgs, jetstreamext.BatchFlowControl{
			AckFirst:   true, // learn at once that the server accepts the batch
			AckTimeout: b.cfg.PublishTimeout,
		})
		cancel()
		if err == nil {
			if ack.BatchSize != uint64(len(chunk)) {
				return 0, false, fmt.Errorf("atomic batch: %d messages acknowledged, %d sent", ack.BatchSize, len(chunk))
			}
			b.stats.published.Add(uint64(len(chunk)))
			return len(chunk), false, nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) {
			b.publishFailed(sentAt, err)
			return 0, false, fmt.Errorf("atomic batch: %w", err)
		}
		switch apiErr.ErrorCode {
		case codeBatchDuplicate, codeBatchTooLarge:
			return 0, true, nil
		case codeBatchDisabled:
			b.atomicBatch.Store(false)
			return 0, true, nil
		case codeBatchTooManyInflight:
			// Other instances hold the stream's open batches: wait a little.
			if sleepCtx(ctx, time.Duration(min(attempt+1, 20))*10*time.Millisecond) {
				continue
			}
			return 0, false, fmt.Errorf("atomic batch: %w", ctx.Err())
		}
		b.publishFailed(sentAt, err)
		return 0, false, fmt.Errorf("atomic batch: %w", err)
	}
}

// publishPipelined sends every message of chunk, then awaits every
// acknowledgement, and returns the acknowledged prefix.
func (b *Bridge) publishPipelined(ctx context.Context, chunk []Message) (BatchAck, error) {
	pending := make([]sent, 0, len(chunk))
	for i := range chunk {
		s := b.send(&chunk[i])
		pending = append(pending, s)
		if s.err != nil {
			break
		}
	}
	var got BatchAck
	var firstErr error
	for i, s := range pending {
		pa, err := b.await(ctx, s)
		var ack Ack
		if err == nil {
			ack, err = b.acked(ctx, &chunk[i], pa)
		} else {
			b.publishFailed(s.at, err)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if firstErr == nil {
			got.Acked++
			if ack.Duplicate {
				got.Duplicates++
			}
		}
	}
	return got, firstErr
}

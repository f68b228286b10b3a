package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// PublishOptions are the optional settings of [Client.Publish] and
// [Client.PublishBatch]; nil means none.
type PublishOptions struct {
	// IdempotencyKey, when set, is sent as the Idempotency-Key header. With
	// NATS, the service stores an event at most once per key within its
	// duplicate window (2 minutes), so that a producer that retries after a
	// timeout or a 503 with the same key does not broadcast twice; a batch's
	// events are keyed with the key plus their index. Reusing a key with
	// another body is a 409 ([ErrConflict]). Without NATS the service
	// ignores it.
	IdempotencyKey string
}

// Publish posts one event on topic ("" for the default topic), named event
// ("" for a plain message, which listeners receive as type "message"), and
// returns once the service has accepted it: it is in the fan-out (with NATS:
// stored in the stream).
//
// body is the event, which must encode to a JSON object: a []byte or a
// [json.RawMessage] is sent as it is (the service validates it, and keeps its
// key order, numbers and escapes, removing only insignificant whitespace);
// any other value is encoded with [encoding/json] (HTML characters not
// escaped; a string becomes a JSON string, which the service refuses: pass
// JSON text as a []byte). The service adds the producer's address as a top-level field
// (user_ip by default). Publish does not keep body or any reference to it.
//
// A refusal of the service is returned as an [*Error] (see the sentinels
// and [IsRetryable]); a request that failed on the way as a [*url.Error]
// from [http.Client.Do]; a body that does not encode as an encoding/json
// error, before anything is sent. Publish blocks until the answer, or until
// ctx is done. It allocates the request and the encoded body.
func (c *Client) Publish(ctx context.Context, topic, event string, body any, opts *PublishOptions) error {
	data, err := encodeEvent(nil, body, false)
	if err != nil {
		return err
	}
	_, err = c.post(ctx, topic, event, "application/json", data, opts)
	return err
}

// PublishBatch posts events as one NDJSON batch (Content-Type
// application/x-ndjson, one event a line) on topic, every event named event,
// and returns how many the service accepted. Each element of events is
// encoded as [Client.Publish] encodes its body; a []byte or a
// [json.RawMessage] is compacted to one line, and must so be valid JSON.
//
// The batch is all or nothing: the service validates every line before it
// publishes any; one invalid event refuses the batch (400, [ErrInvalid],
// the message names the line). On success every event was accepted, in
// order, and no other event comes between them in the stream. The batch must
// fit the service's limits (-max-batch bytes, -max-batch-events events,
// each event -max-body): past them it is refused with 413 ([ErrTooLarge]);
// PublishBatch does not split it, which would break the all or nothing
// promise. An empty events sends nothing and returns 0, nil.
//
// With NATS, a batch that fails part-way returns an [*Error] (503) whose
// Accepted is also the count returned: the first events are stored, the
// others may be or not; send the whole batch again with the same
// [PublishOptions.IdempotencyKey]. Other errors are as for Publish, with 0.
// PublishBatch blocks until the answer, or until ctx is done; it allocates
// the request and the encoded batch, and keeps no reference to events.
func (c *Client) PublishBatch(ctx context.Context, topic, event string, events []any, opts *PublishOptions) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	var batch []byte
	for i, v := range events {
		var err error
		if batch, err = encodeEvent(batch, v, true); err != nil {
			return 0, fmt.Errorf("client: batch event %d: %w", i, err)
		}
		batch = append(batch, '\n')
	}
	answer, err := c.post(ctx, topic, event, "application/x-ndjson", batch, opts)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e.Accepted, err
		}
		return 0, err
	}
	var a struct {
		Accepted *int `json:"accepted"`
	}
	if json.Unmarshal(answer, &a) != nil || a.Accepted == nil {
		// A 200 is all or nothing, even without the service's count (a
		// proxy that rewrote the answer, say).
		return len(events), nil
	}
	return *a.Accepted, nil
}

// encodeEvent appends v, encoded on one line, to dst: a []byte or
// json.RawMessage as it is, or compacted when compact is set (so that the
// event fits on one NDJSON line), anything else with encoding/json.
func encodeEvent(dst []byte, v any, compact bool) ([]byte, error) {
	var raw []byte
	switch b := v.(type) {
	case []byte:
		raw = b
	case json.RawMessage:
		raw = b
	default:
		buf := bytes.NewBuffer(dst)
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return dst, err
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
	}
	if !compact {
		// One event: sent as it is, the service validates and compacts it.
		return append(dst, raw...), nil
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, raw); err != nil {
		return dst, err
	}
	return buf.Bytes(), nil
}

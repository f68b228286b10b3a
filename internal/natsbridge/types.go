package natsbridge

import (
	"strconv"
	"time"
)

// Identity tells incarnations of the stream apart: a stream kept in memory
// that is lost and created again has the same name, a new creation time, and
// sequences that start again from 1. Compare identities with Equal, not ==
// (time.Time carries a location).
type Identity struct {
	// Created is the stream's creation time as JetStream reports it, in UTC,
	// with its full (nanosecond) precision.
	Created time.Time
	// Stream is the stream's name.
	Stream string
}

// IsZero tells whether id is the zero Identity (no stream known yet).
func (id Identity) IsZero() bool { return id.Stream == "" && id.Created.IsZero() }

// Equal tells whether id and other name the same incarnation of a stream.
func (id Identity) Equal(other Identity) bool {
	return id.Stream == other.Stream && id.Created.Equal(other.Created)
}

// String formats id as <stream>@<creation time in Unix nanoseconds>, a
// compact form that is unique per incarnation. It allocates.
func (id Identity) String() string {
	return id.Stream + "@" + strconv.FormatInt(id.Created.UnixNano(), 10)
}

// Delivery is one stored message handed to a Handler or a Replay callback.
type Delivery struct {
	// Identity is the incarnation of the stream the message was read from.
	Identity Identity
	// Stored is when JetStream stored the message.
	Stored time.Time
	// Topic is the subject minus the prefix and its dot; empty if the subject
	// is not under the prefix (a stream this package validated has no such
	// message).
	Topic string
	// Event is the event name from the EventHeader header; empty for none.
	Event string
	// Data is the payload as published. It is not reused by the bridge: the
	// receiver owns it and may keep it.
	Data []byte
	// Seq is the message's stream sequence. Consecutive deliveries of the
	// live consumer have Seq+1, except:
	//   - when messages were removed from the stream (expired past MaxAge)
	//     before this bridge read them: Seq jumps over them;
	//   - with a new Identity: Seq starts again, from 1;
	//   - when the stream lost its messages but kept its Identity (a stream
	//     kept in memory in a cluster whose every replica restarted: JetStream
	//     keeps the creation time): Seq goes back, to 1, with the same
	//     Identity. Use file storage, or replicas that do not all restart at
	//     once, where that matters.
	Seq uint64
}

// Handler receives the stream's messages, in stream order, exactly once per
// (Identity, Seq), from one goroutine of the bridge. It should return quickly:
// while it runs the bridge reads nothing else (messages wait in the client's
// buffer and then on the server, nothing is lost).
type Handler func(Delivery)

// Message is one event to publish.
type Message struct {
	// Topic is the event's topic (ValidTopic); empty means DefaultTopic.
	Topic string
	// Event is the event's name, sent in the EventHeader header; empty for
	// none. No control characters, no surrounding spaces, at most 256 bytes.
	Event string
	// MsgID becomes the JetStream message id (Nats-Msg-Id): a second message
	// with the same id within the duplicate window is acknowledged without
	// being stored again. Empty for none. Same rules as Event. EventMsgID and
	// BatchMsgID make ids from an idempotency key.
	MsgID string
	// Fingerprint, with a MsgID, identifies the message's content (a digest of
	// what the producer sent, say): it is stored with the message
	// (FingerprintHeader), and a duplicate of an id stored with another
	// fingerprint fails with ErrIDReused. Empty for none. Same rules as Event.
	Fingerprint string
	// Data is the payload, stored and delivered byte for byte. The client
	// keeps a reference until the publish is acknowledged, failed or timed
	// out: the caller must not modify it after the call.
	Data []byte
}

// Package natsbridge connects one dispatcher instance to a NATS JetStream
// stream that several instances share, so every listener on every instance
// sees every event once, in the stream's single order.
//
// A [Bridge] has two sides:
//
//   - Publishing. [Bridge.Publish] and [Bridge.PublishBatch] store events in
//     the stream and return once JetStream acknowledged them (stored, and
//     replicated as configured). Publishes are pipelined: many goroutines may
//     publish at once over the one connection, each waiting only for its own
//     acknowledgement. While NATS is unreachable they fail at once with
//     [ErrUnavailable]; nothing is queued to be sent later.
//   - Consuming. Every bridge reads the whole stream in order, from where it
//     started, and calls its [Handler] once per message, from one goroutine,
//     in stream order. It reads with its own ordered consumer (see
//     consume.go): an ephemeral, unacknowledged, in-memory consumer that is
//     replaced whenever anything goes wrong, resuming right after the last
//     sequence handed to the handler.
//
// [Bridge.OpenReplay] reads the stream from a past sequence on, for a
// listener that resumes from an event older than what the instance keeps in
// memory (or one the instance has not consumed yet).
//
// [Bridge.Status] says whether the bridge can publish now: connected, and the
// stream answering with a leader (see health.go). Publish fails at once while
// it cannot, rather than waiting on a server that is gone.
//
// # Message ids
//
// A message id (Nats-Msg-Id) makes a retried publish store the message at
// most once. [EventMsgID] and [BatchMsgID] give single events and the lines
// of a batch ids in separate namespaces, so that no key of one can name a
// message of the other. A Message's Fingerprint, stored with its id, tells a
// retry (same fingerprint) from another message that reuses the id
// (ErrIDReused).
//
// # Subjects and topics
//
// An event's topic is a dot-separated name ([ValidTopic]); it is published on
// the subject <prefix>.<topic>, and the stream captures <prefix>.>. The event
// name travels in the [EventHeader] header, the idempotency key in
// Nats-Msg-Id, and the payload bytes are passed through untouched.
//
// # Stream identity
//
// A stream kept in memory does not survive a restart of its server: it is
// created again (by whichever instance notices first) and its sequences start
// again from 1. An [Identity] (the stream's name and creation time) tells
// incarnations apart: every [Delivery] carries the identity of the stream it
// came from, so a handler learns of a new incarnation with its first message.
// In a cluster JetStream keeps a stream's creation time in its assignment: a
// stream kept in memory whose every replica restarted comes back empty with
// the same identity. The bridge notices (the stream's sequences went back)
// and reads it from sequence 1 again: Delivery.Seq then goes back under the
// same identity, and Stats.StreamResets counts it.
package natsbridge

import "errors"

// Sentinel errors. Functions wrap them with details (%w); compare with
// errors.Is.
var (
	// ErrInvalidConfig is returned by Config.Validate, New and Start for a
	// setting that cannot work (the message names it), or a credentials or TLS
	// file that cannot be loaded.
	ErrInvalidConfig = errors.New("natsbridge: invalid configuration")
	// ErrConflict is returned by Start when the stream exists with settings
	// that conflict with the configuration (subjects, storage, replicas,
	// retention, or a stream that cannot be published to), or when another
	// stream already captures the subjects. The message names the setting.
	ErrConflict = errors.New("natsbridge: stream conflicts with the configuration")
	// ErrNoJetStream is returned by Start when the server or account has no
	// JetStream.
	ErrNoJetStream = errors.New("natsbridge: JetStream not enabled")
	// ErrUnavailable is returned by Publish, PublishBatch, OpenReplay and
	// Replay.Next when NATS or the stream cannot be reached, the stream has
	// no leader, an acknowledgement did not come in time, or the bridge has
	// not joined the stream yet. A publish that failed with it may or may not
	// have been stored: retrying with the same message id stores it at most
	// once.
	ErrUnavailable = errors.New("natsbridge: NATS unavailable")
	// ErrRejected is returned by Publish and PublishBatch when JetStream
	// refused a message for good (too large, for instance): retrying the same
	// message fails the same way.
	ErrRejected = errors.New("natsbridge: publish rejected")
	// ErrInvalidMessage is returned by Publish and PublishBatch, before
	// anything is sent, for an invalid topic, event name, message id or
	// fingerprint, and by OpenReplay for an invalid topic.
	ErrInvalidMessage = errors.New("natsbridge: invalid message")
	// ErrIDReused is returned by Publish and PublishBatch when a message's id
	// is in the stream's duplicate window for a message with another
	// fingerprint: another event reused the id. Nothing was stored.
	ErrIDReused = errors.New("natsbridge: message id reused for another message")
	// ErrStreamChanged is returned by OpenReplay and Replay.Next when the
	// stream is no longer the incarnation the caller asked for.
	ErrStreamChanged = errors.New("natsbridge: stream identity changed")
	// ErrAhead is returned by OpenReplay when the sequence before the one to
	// start from is beyond the stream's last: an id the stream never gave out.
	ErrAhead = errors.New("natsbridge: sequence beyond the stream's last")
	// ErrCaughtUp is returned by Replay.Next, once, when the replay's
	// consumer starts with nothing to read: the replay has caught up (see
	// Replay.CaughtUp). Calling Next again waits for the next message.
	ErrCaughtUp = errors.New("natsbridge: replay caught up")
	// ErrStarted is returned by a second call to Start.
	ErrStarted = errors.New("natsbridge: already started")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("natsbridge: closed")
)

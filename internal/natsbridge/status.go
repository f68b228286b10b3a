package natsbridge

import (
	"sync/atomic"
)

// State is what a bridge is doing, as /health and metrics report it.
type State uint8

// States of a Bridge.
const (
	// StateNew: created, not started.
	StateNew State = iota
	// StateJoining: started, has not joined the stream yet (NATS not reached,
	// stream not ready or consumer not created).
	StateJoining
	// StateReady: connected, stream verified, consumer reading.
	StateReady
	// StateDisconnected: was ready, lost the connection or the stream, and is
	// rejoining.
	StateDisconnected
	// StateConflict: the stream exists with conflicting settings; the bridge
	// checks again every few seconds.
	StateConflict
	// StateClosed: Close was called.
	StateClosed
)

var stateNames = [...]string{"new", "joining", "ready", "disconnected", "conflict", "closed"}

// String returns the state's lower-case name ("ready", ...).
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Status is a snapshot of a bridge's state, for /health and metrics.
type Status struct {
	// Identity is the stream incarnation the consumer reads; zero before the
	// bridge first joined.
	Identity Identity
	// Reason says why the bridge is not ready (the last connection or stream
	// error); empty when ready.
	Reason string
	// Server is the URL of the server connected to; empty when disconnected.
	Server string
	// LastSeq is the sequence of the last message handed to the handler.
	LastSeq uint64
	// PublishReason says why the bridge cannot publish now; empty when it can.
	PublishReason string
	// State is what the live consumer is doing.
	State State
	// Connected tells whether the NATS connection is up.
	Connected bool
	// Publishable tells whether the bridge can publish now: connected, and
	// the stream answering with a leader (see health.go). It is what an
	// instance's readiness means.
	Publishable bool
	// AtomicBatches tells whether PublishBatch uses JetStream's atomic batch
	// publish (the stream allows it) or pipelines the messages.
	AtomicBatches bool
}

// Stats are counters since New, for metrics. They only grow.
type Stats struct {
	// Published counts messages acknowledged as stored, duplicates excluded.
	Published uint64
	// Duplicates counts messages acknowledged as duplicates of a message id
	// already in the stream (not stored again): retries. Ids reused for
	// another message are counted in IDReused instead.
	Duplicates uint64
	// IDReused counts duplicates refused because the message stored first
	// with the id has another fingerprint (ErrIDReused).
	IDReused uint64
	// Unpublishable counts the times the bridge stopped publishing because
	// the stream or the connection failed (see Status.Publishable).
	Unpublishable uint64
	// PublishFailed counts messages whose publish returned an error.
	PublishFailed uint64
	// Consumed counts messages handed to the handler.
	Consumed uint64
	// Skipped counts sequences the live consumer jumped over: messages removed
	// from the stream before this bridge read them.
	Skipped uint64
	// Resets counts consumers replaced after a reconnect, a missed heartbeat,
	// a gap or a new stream incarnation.
	Resets uint64
	// StreamResets counts the times the live consumer started again from
	// sequence 1: after a new incarnation of the stream (a new Identity), or
	// after the stream lost its messages and kept its identity (a stream kept
	// in memory in a cluster whose every replica restarted), where
	// Delivery.Seq goes back with the same Identity.
	StreamResets uint64
	// Replayed counts messages handed to Replay callbacks.
	Replayed uint64
	// Reconnects counts reconnections to NATS.
	Reconnects uint64
}

// counters are the live Stats: each is updated with one atomic add, so Stats
// never takes a lock and publishers never wait for each other here.
type counters struct {
	published, duplicates, publishFailed atomic.Uint64
	consumed, skipped, resets, replayed  atomic.Uint64
	reconnects, streamResets             atomic.Uint64
	conflicts, unpublishable             atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Published:     c.published.Load(),
		Duplicates:    c.duplicates.Load(),
		IDReused:      c.conflicts.Load(),
		Unpublishable: c.unpublishable.Load(),
		PublishFailed: c.publishFailed.Load(),
		Consumed:      c.consumed.Load(),
		Skipped:       c.skipped.Load(),
		Resets:        c.resets.Load(),
		Replayed:      c.replayed.Load(),
		Reconnects:    c.reconnects.Load(),
		StreamResets:  c.streamResets.Load(),
	}
}

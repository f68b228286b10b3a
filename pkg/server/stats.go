package server

import (
	"sync/atomic"
)

// EndReason is why a listener's stream ended.
type EndReason uint8

// End reasons.
const (
	// EndGone: the listener closed or reset its connection.
	EndGone EndReason = iota
	// EndSlow: a write stayed blocked past the write timeout (the listener
	// stopped reading), or the stream was cut at shutdown for that reason.
	EndSlow
	// EndLagged: the listener fell behind the buffer and the lag policy is
	// to cut it.
	EndLagged
	// EndShutdown: the service is shutting down.
	EndShutdown
	// EndMaxAge: the stream reached its maximum age.
	EndMaxAge
	// EndError: anything else (a write error that is neither, a panic).
	EndError
	// EndExpired: the listener's signed token expired.
	EndExpired
	numEndReasons
)

var endReasonNames = [numEndReasons]string{"gone", "slow", "lagged", "shutdown", "max_age", "error", "expired"}

func (r EndReason) String() string {
	if r < numEndReasons {
		return endReasonNames[r]
	}
	return "unknown"
}

// cut reports whether the reason is the service's decision against a
// listener (logged as a warning), rather than the listener's doing or a
// planned end.
func (r EndReason) cut() bool { return r == EndSlow || r == EndLagged }

// TurnAwayReason is why a listener was not given a stream.
type TurnAwayReason uint8

// Turn-away reasons.
const (
	// TurnAwayLimit: the listener limit is reached.
	TurnAwayLimit TurnAwayReason = iota
	// TurnAwayIPLimit: the per-address listener limit is reached.
	TurnAwayIPLimit
	// TurnAwayTopics: the topic limit is reached.
	TurnAwayTopics
	// TurnAwayShutdown: the service is shutting down.
	TurnAwayShutdown
	// TurnAwayUnauthorized: the listen token is missing or wrong (401).
	TurnAwayUnauthorized
	// TurnAwayInvalid: a bad topic, where or sample parameter (400).
	TurnAwayInvalid
	// TurnAwayForbidden: the listener's signed token does not allow a topic
	// it asked for (403).
	TurnAwayForbidden
	// TurnAwaySubjectLimit: the per-subject listener limit is reached.
	TurnAwaySubjectLimit
	// TurnAwayFilters: the listener's filter is new and the limit of
	// distinct filters is reached.
	TurnAwayFilters
	numTurnAwayReasons
)

var turnAwayNames = [numTurnAwayReasons]string{"limit", "ip_limit", "topics", "shutdown", "unauthorized", "invalid",
	"forbidden", "subject_limit", "filters"}

func (r TurnAwayReason) String() string {
	if r < numTurnAwayReasons {
		return turnAwayNames[r]
	}
	return "unknown"
}

// RejectReason is why a POST was refused.
type RejectReason uint8

// Reject reasons.
const (
	// RejectInvalid: not a valid event or batch, or a bad parameter (400).
	RejectInvalid RejectReason = iota
	// RejectTooLarge: the body is over the limit (413).
	RejectTooLarge
	// RejectUnauthorized: the publish token is missing or wrong (401).
	RejectUnauthorized
	// RejectForbidden: the origin is not allowed (403).
	RejectForbidden
	// RejectShuttingDown: the service is shutting down (503).
	RejectShuttingDown
	// RejectUnavailable: the events could not be shared with the other
	// instances (NATS unreachable: 503).
	RejectUnavailable
	// RejectTooManyTopics: a new topic would exceed the limit (503).
	RejectTooManyTopics
	// RejectTimeout: the request was not received in time (408).
	RejectTimeout
	// RejectMalformed: not a valid HTTP request (400, 431, 405, 404).
	RejectMalformed
	// RejectConflict: the Idempotency-Key was used for another event (409).
	RejectConflict
	numRejectReasons
)

var rejectNames = [numRejectReasons]string{
	"invalid", "too_large", "unauthorized", "forbidden", "shutting_down", "unavailable", "too_many_topics", "timeout",
	"malformed", "conflict",
}

func (r RejectReason) String() string {
	if r < numRejectReasons {
		return rejectNames[r]
	}
	return "unknown"
}

// stats are the service's counters. Each is updated with one atomic add, never
// per listener per event.
type stats struct {
	accepted   atomic.Uint64 // events published
	listeners  atomic.Int64  // listeners streaming now
	connected  atomic.Uint64 // listeners ever given a stream
	rejected   [numRejectReasons]atomic.Uint64
	turnedAway [numTurnAwayReasons]atomic.Uint64
	ended      [numEndReasons]atomic.Uint64
	// Totals of ended streams; live streams keep their own until they end.
	delivered atomic.Uint64
	written   atomic.Uint64
	panics    atomic.Uint64
	// consumeDropped counts events consumed from the shared stream that
	// could not be put in the ring (the topic limit).
	consumeDropped atomic.Uint64
	// filteredOut counts the events of listeners' topics their filters
	// turned away, added by each stream once per batch it reads.
	filteredOut atomic.Uint64
	// consumeInvalid counts messages read from the shared stream that failed
	// the checks of an event: skipped, never framed.
	consumeInvalid atomic.Uint64
}

// Stats is a snapshot of the service's counters, for /health and metrics.
type Stats struct {
	EventsAccepted  uint64
	EventsRejected  [numRejectReasons]uint64
	Listeners       int64
	MaxListeners    int
	ListenersTotal  uint64
	TurnedAway      [numTurnAwayReasons]uint64
	Ended           [numEndReasons]uint64
	FramesDelivered uint64
	BytesWritten    uint64
	FramesMissed    uint64
	Topics          int
	// Filters is the number of distinct listener filters alive (over
	// distinct topics: see fanout.Ring.Filters).
	Filters int
	// FilteredOut counts the events of listeners' topics their filters
	// turned away (one per event and listener): what filters saved.
	FilteredOut uint64
	Buffer      int
	Panics      uint64
	// ConsumeDropped counts events consumed from the shared stream that
	// could not be put in this instance's fan-out (every topic listened to
	// and the topic limit reached).
	ConsumeDropped uint64
	// ConsumeInvalid counts messages read from the shared stream (live or
	// replayed) that failed the checks of an event (topic, event name, JSON
	// object): skipped, never framed.
	ConsumeInvalid  uint64
	Ready           bool
	ShuttingDown    bool
	RejectedTotal   uint64 // sum of EventsRejected
	TurnedAwayTotal uint64 // sum of TurnedAway
}

// Stats returns a snapshot of the counters. It walks the live streams and the
// ring's subscribers: call it at a scrape, not per event.
func (s *Server) Stats() Stats {
	st := Stats{
		EventsAccepted: s.stats.accepted.Load(),
		Listeners:      s.stats.listeners.Load(),
		MaxListeners:   s.cfg.MaxListeners,
		ListenersTotal: s.stats.connected.Load(),
		FramesMissed:   s.ring.Missed(),
		Topics:         s.ring.Topics(),
		Filters:        s.ring.Filters(),
		FilteredOut:    s.stats.filteredOut.Load(),
		Buffer:         s.ring.Size(),
		Panics:         s.stats.panics.Load(),
		ConsumeDropped: s.stats.consumeDropped.Load(),
		ConsumeInvalid: s.stats.consumeInvalid.Load(),
		Ready:          s.Ready(),
		ShuttingDown:   s.state.Load() >= stateDraining,
	}
	for i := range st.EventsRejected {
		st.EventsRejected[i] = s.stats.rejected[i].Load()
		st.RejectedTotal += st.EventsRejected[i]
	}
	for i := range st.TurnedAway {
		st.TurnedAway[i] = s.stats.turnedAway[i].Load()
		st.TurnedAwayTotal += st.TurnedAway[i]
	}
	for i := range st.Ended {
		st.Ended[i] = s.stats.ended[i].Load()
	}
	st.FramesDelivered, st.BytesWritten = s.streams.totals()
	st.FramesDelivered += s.stats.delivered.Load()
	st.BytesWritten += s.stats.written.Load()
	return st
}

package client

import "encoding/json"

// Event types and topics with a meaning of their own.
const (
	// TypeMessage is the type of an event that names none (no "event:"
	// field), as the SSE standard says.
	TypeMessage = "message"
	// TypeGap is the type of the service's "gap" event: the listener lost
	// events. Producers cannot publish events of this type.
	TypeGap = "gap"
	// DefaultTopic is the topic of an event whose frame names none (no
	// "topic:" field): the service's default topic.
	DefaultTopic = "default"
)

// Event is one event read from a stream.
//
// An Event is a plain value: the caller owns it, and its Data, which is
// allocated for it and shared with nothing else (the Reader and the
// Subscription keep no reference to it).
type Event struct {
	// ID is the stream's last event id when the event was dispatched, as the
	// SSE standard defines it: the value of the last "id:" field, which is
	// the event's own id for the service's events. A gap event has no id of
	// its own, so its ID is the id of the event before it (the id a resuming
	// listener sends back).
	ID string
	// Type is the event's name ("event:" field), [TypeMessage] when the
	// frame names none, [TypeGap] for a gap.
	Type string
	// Topic is the event's topic ("topic:" field, an extension of the
	// service's that the standard's clients ignore), [DefaultTopic] when the
	// frame names none. It is empty for a gap, which concerns every topic
	// the listener asked for.
	Topic string
	// Data is the event's data: its "data:" lines joined by LF, without the
	// last LF. For the service's events, one compact JSON object, ready for
	// json.Unmarshal; for a gap, {"missed":N} or {"missed":null}.
	Data []byte
	// Gap is true for a gap event (Type is [TypeGap]): events meant for
	// this listener were lost before this point (it fell too far behind, or
	// resumed from an id no longer held or unknown to the service).
	Gap bool
	// Missed, for a gap event, is how many events were lost, or nil when
	// the service does not know (a listener to some topics that resumed
	// from an id no longer held, or an id from another run or stream). It
	// is nil for any other event.
	Missed *uint64
}

// parseGap fills in the Gap and Missed fields of a gap event from its data;
// data the service would not send leaves Missed nil (unknown).
func (ev *Event) parseGap() {
	ev.Gap = true
	ev.Topic = ""
	var g struct {
		Missed *uint64 `json:"missed"`
	}
	if json.Unmarshal(ev.Data, &g) == nil {
		ev.Missed = g.Missed
	}
}

package server

import (
	"strconv"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// Server-Sent Events wire encoding (WHATWG HTML, "Server-sent events").
//
// A stream is UTF-8 text made of blocks separated by a blank line. Lines end
// in LF, CR or CRLF; this server only ever writes LF. A line starting with ':'
// is a comment, which clients ignore: the greeting and the heartbeat are
// comments. "id:" sets the client's last event id (sent back as
// Last-Event-ID when it reconnects), "event:" names the event (absent:
// "message"), "data:" lines carry the event's data, "retry:" sets the
// client's reconnection delay in milliseconds; a block with only a retry
// field dispatches nothing. This server's data is always compact JSON, which
// cannot contain a raw CR or LF (JSON escapes them inside strings and
// compaction removes the whitespace between tokens), so one "data:" line
// always holds one whole event; ids and event names are restricted to
// characters that need no escaping either.
//
// An event frame, built once per event and shared by every listener:
//
//	id: <id>\n
//	event: <name>\n          (only for named events)
//	topic: <topic>\n         (only for events on a topic other than "default")
//	data: <compact JSON>\n
//	\n
//
// "topic" is not a field the standard defines: EventSource ignores it (the
// standard says to ignore unknown fields), and clients that read the stream
// themselves (the viewer, the Go client) learn each event's topic from it.

const (
	// greeting opens every stream, flushed with the headers so that the
	// client's open event fires at once; a retry field follows it in the
	// same block.
	greeting = ": connected\n"
	// heartbeat is written after every idle interval.
	heartbeat   = ": ping\n\n"
	idPrefix    = "id: "
	eventPrefix = "event: "
	topicPrefix = "topic: "
	dataPrefix  = "data: "
	// frameEnd ends every block.
	frameEnd = "\n\n"
)

// appendGap appends a "gap" event telling a listener it missed n events, or
// an unknown number when known is false. It has no id, so the client's last
// event id stays the last event it received.
func appendGap(dst []byte, n uint64, known bool) []byte {
	dst = append(dst, "event: gap\ndata: {\"missed\":"...)
	if known {
		dst = strconv.AppendUint(dst, n, 10)
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, "}\n\n"...)
}

// appendRetry appends a block that only sets the client's reconnection delay.
func appendRetry(dst []byte, ms int64) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, frameEnd...)
}

// appendTurnedAway appends the whole body a turned-away listener receives: a
// comment saying why, and a reconnection delay.
func appendTurnedAway(dst []byte, reason string, ms int64) []byte {
	dst = append(dst, ": "...)
	dst = append(dst, reason...)
	dst = append(dst, '\n')
	return appendRetry(dst, ms)
}

// appendAllowed appends the comment that tells a listener with a signed
// token what it allows: ": allowed <topics and patterns>[; expires <RFC 3339
// time>]". Patterns and topics hold no spaces, commas nor line breaks.
func appendAllowed(dst []byte, allowed []string, expires time.Time) []byte {
	dst = append(dst, ": allowed "...)
	for i, a := range allowed {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, a...)
	}
	if !expires.IsZero() {
		dst = append(dst, "; expires "...)
		dst = expires.UTC().AppendFormat(dst, time.RFC3339)
	}
	return append(dst, '\n')
}

// appendFilter appends the comment that tells a filtered listener its filter
// as the service understood it: ": filter <filter>" (the viewer shows it).
// Filter.String is one line: it quotes what holds a line break.
func appendFilter(dst []byte, f *filter.Filter) []byte {
	dst = append(dst, ": filter "...)
	dst = append(dst, f.String()...)
	return append(dst, '\n')
}

package server

import "strconv"

// Server-Sent Events wire encoding (WHATWG HTML, "Server-sent events").
//
// A stream is UTF-8 text made of blocks separated by a blank line. Lines end
// in LF, CR or CRLF; this server only ever writes LF. A line starting with ':'
// is a comment, which clients ignore: the greeting and the heartbeat are
// comments. "data:" lines carry the event's data; this server's data is
// always compact JSON, which cannot contain a raw CR or LF (JSON escapes them
// inside strings and compaction removes the whitespace between tokens), so
// one "data:" line always holds one whole event. "event:" names the event
// (absent: "message"), "retry:" sets the client's reconnection delay in
// milliseconds; a block with only a retry field dispatches nothing.

const (
	// greeting is flushed with the headers so the client's open event fires
	// at once.
	greeting = ": connected\n\n"
	// heartbeat is written after every idle interval.
	heartbeat = ": ping\n\n"
	// dataPrefix starts every event frame.
	dataPrefix = "data: "
	// frameEnd ends every block.
	frameEnd = "\n\n"
)

// appendGap appends a "gap" event telling a listener it missed n events.
func appendGap(dst []byte, n uint64) []byte {
	dst = append(dst, "event: gap\ndata: {\"missed\":"...)
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, "}\n\n"...)
}

// appendRetry appends a block that only sets the client's reconnection delay.
func appendRetry(dst []byte, ms int64) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, frameEnd...)
}

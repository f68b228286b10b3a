// Package sseclient parses Server-Sent Event streams the way browsers do,
// following the WHATWG HTML standard's "event stream interpretation". The
// service's tests and tools use it to read what listeners really receive.
package sseclient

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
)

// Message is one thing read from a stream: a dispatched event, or a comment
// line (which browsers ignore, but tests want to see).
type Message struct {
	// Type is the event type ("message" unless an event field named it);
	// empty for a comment.
	Type string
	// Data is the event's data (its data lines joined by "\n"), or the
	// comment's text after the colon (a leading space removed).
	Data string
	// ID is the stream's last event ID when the event was dispatched.
	ID string
	// Comment is true for a comment line.
	Comment bool
}

// Reader reads messages from an event stream. It is not safe for concurrent
// use.
type Reader struct {
	lines *bufio.Scanner
	data  strings.Builder
	typ   string
	// LastID is the last event ID the stream set.
	LastID string
	// Retry is the last reconnection time, in milliseconds, the stream set
	// with a valid retry field; -1 until then.
	Retry int64
	// hasData is set once a data field was seen in the current block.
	hasData bool
	started bool
}

// maxLine bounds one line of the stream.
const maxLine = 1 << 20

// NewReader returns a Reader of r, which must be the decoded body of the
// response (the stream itself, without HTTP framing).
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(splitLines)
	return &Reader{lines: sc, Retry: -1}
}

// splitLines splits at CRLF, LF or CR, the three line endings of the format.
func splitLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0:
		if atEOF && len(data) > 0 {
			// A final line without an ending is never dispatched by a
			// browser; hand it over so the caller can tell.
			return len(data), data, nil
		}
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data): // CR followed by something
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF: // CR at the very end
		return i + 1, data[:i], nil
	default: // CR at the end of what we have: is an LF next?
		return 0, nil, nil
	}
}

// Next returns the next event or comment. At the end of the stream it
// returns io.EOF (an event whose block was not ended by a blank line is
// discarded, as browsers do), or the underlying reader's error.
func (r *Reader) Next() (Message, error) {
	for r.lines.Scan() {
		line := r.lines.Bytes()
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		if len(line) == 0 {
			if m, ok := r.dispatch(); ok {
				return m, nil
			}
			continue
		}
		if line[0] == ':' {
			return Message{Comment: true, Data: strings.TrimPrefix(string(line[1:]), " ")}, nil
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], bytes.TrimPrefix(line[i+1:], []byte(" "))
		}
		r.process(string(field), value)
	}
	if err := r.lines.Err(); err != nil {
		return Message{}, err
	}
	return Message{}, io.EOF
}

func (r *Reader) process(field string, value []byte) {
	switch field {
	case "event":
		r.typ = string(value)
	case "data":
		r.data.Write(value)
		r.data.WriteByte('\n')
		r.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.LastID = string(value)
		}
	case "retry":
		if len(value) > 0 && strings.Trim(string(value), "0123456789") == "" {
			if n, err := strconv.ParseInt(string(value), 10, 64); err == nil {
				r.Retry = n
			}
		}
	}
	// Other fields are ignored.
}

// dispatch ends a block: it returns the event if the block had data.
func (r *Reader) dispatch() (Message, bool) {
	defer func() {
		r.data.Reset()
		r.typ = ""
		r.hasData = false
	}()
	if !r.hasData {
		return Message{}, false
	}
	typ := r.typ
	if typ == "" {
		typ = "message"
	}
	return Message{Type: typ, Data: strings.TrimSuffix(r.data.String(), "\n"), ID: r.LastID}, true
}

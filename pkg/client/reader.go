package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// Server-Sent Events wire decoding, as the WHATWG HTML standard's "event
// stream interpretation" says (section 9.2.6), with one extension: the
// service's "topic" field.
//
//   - The stream is UTF-8: invalid bytes become U+FFFD (one per maximal
//     invalid subpart, as the standard's UTF-8 decoder does), and one leading
//     byte order mark is dropped.
//   - Lines end in CRLF, LF or CR. A line that no line ending ends (the
//     stream's last bytes) is discarded unread.
//   - A blank line dispatches the event being built; a block without any
//     "data" field dispatches nothing (but still sets the last event id). A
//     block the stream ends in the middle of is discarded.
//   - A line starting with ':' is a comment. Otherwise the field name is what
//     comes before the first ':' (the whole line if there is none), the
//     value what comes after it, one leading space removed.
//   - "event" sets the event type, "data" adds a line to the data, "id" sets
//     the last event id unless its value contains NUL, "retry" sets the
//     reconnection time when its value is ASCII digits only, "topic" (the
//     extension) sets the event's topic. Other fields are ignored.

// maxLine bounds one line of a stream, and the data of one event: the
// memory a Reader holds. The service's events are at most its -max-body
// (64 KiB by default) plus the producer's address.
const maxLine = 16 << 20

// Message is what [Reader.NextMessage] reads: an event, or a comment line.
// Browsers ignore comments; the service sends them as a greeting
// (": connected"), a heartbeat (": ping") and to say why a listener was
// turned away (": too many listeners").
type Message struct {
	// Event is the event, when IsComment is false.
	Event Event
	// Comment is the comment's text, after the ':' and one leading space,
	// when IsComment is true.
	Comment string
	// IsComment tells a comment from an event.
	IsComment bool
}

// Reader reads the events of one Server-Sent Events stream: the decoded body
// of the response (without HTTP framing), through a buffer of its own. It
// keeps the stream's state between events: the last event id and the
// reconnection time.
//
// A Reader is not safe for concurrent use. Its methods block until the
// underlying reader gives enough bytes.
type Reader struct {
	lines *bufio.Scanner
	// err is the error that ended the stream, returned again by every call.
	err error
	// data is the data buffer: each data line followed by LF.
	data []byte
	// scratch holds a line repaired to valid UTF-8.
	scratch []byte
	// typ and topic are the last values the event and topic fields set,
	// kept across events so that an unchanged one is not allocated again;
	// typSet and topicSet say whether the current block set them.
	typ, topic string
	// idBuf is the standard's last event ID buffer, lastID its last event
	// ID string (idBuf as of the last blank line).
	idBuf, lastID string
	retry         time.Duration
	// searched is how many bytes of the line being read were searched
	// for its end already.
	searched         int
	retrySet         bool
	typSet, topicSet bool
	hasData          bool
	started          bool
}

// NewReader returns a Reader of the stream r. It allocates the Reader and a
// 4 KiB buffer, which grows to the longest line read (at most 16 MiB).
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	rd := &Reader{lines: sc}
	sc.Split(rd.splitLines)
	return rd
}

// splitLines splits at CRLF, LF or CR, the three line endings of the format,
// and drops a last line that no line ending ends. It remembers how much of a
// line it has searched already, so that a long line arriving in small reads
// is searched once, not once per read.
func (r *Reader) splitLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	i := r.searched + lineEnd(data[r.searched:])
	switch {
	case i < r.searched:
		if atEOF && len(data) > 0 {
			r.searched = 0
			return len(data), nil, nil // an unended line: discarded
		}
		r.searched = len(data)
		return 0, nil, nil
	case data[i] == '\n':
		r.searched = 0
		return i + 1, data[:i], nil
	case i+1 < len(data): // CR followed by something
		r.searched = 0
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF: // CR at the very end
		r.searched = 0
		return i + 1, data[:i], nil
	default: // CR at the end of what we have: is an LF next?
		r.searched = i
		return 0, nil, nil
	}
}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	// Two vectorized searches rather than one IndexAny, which goes byte by
	// byte: the service only writes LF, so the search for CR stops there.
	lf := bytes.IndexByte(b, '\n')
	if lf < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if cr := bytes.IndexByte(b[:lf], '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// Next returns the next event, skipping comments. At the end of the stream
// it returns [io.EOF] (an event whose block no blank line ended is
// discarded, as browsers do); it returns the underlying reader's error if
// reading fails, and [ErrTooLong] for a line or an event's data over 16 MiB.
// After an error, every call returns it again. The returned Event's Data is
// allocated for it; its strings are shared with earlier events when
// unchanged.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	m, err := r.next(false)
	r.err = err
	return m.Event, err
}

// NextMessage is Next, with the comments: it returns the next event or
// comment line, in stream order. A comment's text is allocated.
func (r *Reader) NextMessage() (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	m, err := r.next(true)
	r.err = err
	return m, err
}

// next returns the next event, or comment when comments is set.
func (r *Reader) next(comments bool) (Message, error) {
	for r.lines.Scan() {
		line := r.lines.Bytes()
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, []byte("\uFEFF"))
		}
		if !utf8.Valid(line) {
			r.scratch = appendValidUTF8(r.scratch[:0], line)
			line = r.scratch
		}
		switch {
		case len(line) == 0:
			if ev, ok := r.dispatch(); ok {
				return Message{Event: ev}, nil
			}
		case line[0] == ':':
			if comments {
				return Message{IsComment: true, Comment: string(trimSpace(line[1:]))}, nil
			}
		default:
			field, value, _ := bytes.Cut(line, []byte{':'})
			if err := r.process(field, trimSpace(value)); err != nil {
				return Message{}, err
			}
		}
	}
	if err := r.lines.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Message{}, ErrTooLong
		}
		return Message{}, err
	}
	return Message{}, io.EOF
}

// LastEventID returns the stream's last event ID string, as the standard
// defines it: the value of the last "id" field as of the last blank line.
// It is what a client sends back as Last-Event-ID when it reconnects.
func (r *Reader) LastEventID() string { return r.lastID }

// Retry returns the reconnection time the stream last set with a valid
// "retry" field, and whether it set one.
func (r *Reader) Retry() (time.Duration, bool) { return r.retry, r.retrySet }

// trimSpace removes one leading space.
func trimSpace(b []byte) []byte {
	if len(b) > 0 && b[0] == ' ' {
		return b[1:]
	}
	return b
}

func (r *Reader) process(field, value []byte) error {
	switch string(field) {
	case "event":
		if string(value) != r.typ {
			r.typ = string(value)
		}
		r.typSet = true
	case "data":
		if len(r.data)+len(value) >= maxLine {
			return ErrTooLong
		}
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
		r.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != r.idBuf {
			r.idBuf = string(value)
		}
	case "retry":
		if ms, ok := parseDigits(value); ok {
			r.retry = time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
			r.retrySet = true
		}
	case "topic":
		if string(value) != r.topic {
			r.topic = string(value)
		}
		r.topicSet = true
	}
	// Other fields are ignored.
	return nil
}

// parseDigits parses a value of ASCII digits only, saturating at the
// largest int64.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// dispatch ends a block: it returns the event if the block had data.
func (r *Reader) dispatch() (Event, bool) {
	r.lastID = r.idBuf
	ok := r.hasData
	var ev Event
	if ok {
		ev = Event{ID: r.lastID, Type: TypeMessage, Topic: DefaultTopic, Data: bytes.Clone(r.data[:len(r.data)-1])}
		if r.typSet && r.typ != "" {
			ev.Type = r.typ
		}
		if r.topicSet && r.topic != "" {
			ev.Topic = r.topic
		}
		if ev.Type == TypeGap {
			ev.parseGap()
		}
	}
	r.data = r.data[:0]
	r.hasData, r.typSet, r.topicSet = false, false, false
	return ev, ok
}

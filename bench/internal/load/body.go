package load

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
)

// Event bodies are pre-built once per producer; before every POST only the
// sequence number and the send timestamp are patched in place. Both live in
// fixed-width slots: the digits are right-aligned and preceded by spaces,
// which JSON allows between a colon and a value, so no re-encoding and no
// change of length is ever needed.
//
// Layout (keys chosen so that a substring search finds them in the service's
// output whatever order it writes keys in):
//
//	{"run":"<8 hex>","pid":<n>,"seq":<20-wide>,"ts":<20-wide>,"pad":"xxx…"}
//
// With buckets (Config.Buckets, for listener filters: see filter.go) a
// bucket, seq mod buckets, zero-padded, comes before the padding:
//
//	…,"ts":<20-wide>,"bucket":"<digits>","pad":"xxx…"}
const slotWidth = 20 // enough for any uint64 / positive int64

// Body is one producer's reusable event body.
type Body struct {
	buf       []byte
	seqOff    int
	tsOff     int
	bucketOff int    // where the bucket's digits start (with buckets)
	bucketEnd int    // and end
	buckets   uint64 // 0: no bucket field
}

// MinBodySize is the smallest body NewBody can produce (empty padding).
var MinBodySize = len(buildBody("", "", "00000000", 0, 0, 0).buf)

// NewBody builds a body of approximately size bytes (exactly size when size
// is at least MinBodySize for the given producer id) for producer pid of run.
func NewBody(run string, pid int, size int) *Body {
	return newWrappedBody("", "", run, pid, size, 0)
}

// newWrappedBody is NewBody with the event between prefix and suffix (the
// POST body of protocols that wrap the event) and, when buckets is
// positive, a bucket field; size is the event's.
func newWrappedBody(prefix, suffix, run string, pid, size, buckets int) *Body {
	b := buildBody(prefix, suffix, run, pid, 0, buckets)
	if pad := size - (len(b.buf) - len(prefix) - len(suffix)); pad > 0 {
		b = buildBody(prefix, suffix, run, pid, pad, buckets)
	}
	return b
}

func buildBody(prefix, suffix, run string, pid, pad, buckets int) *Body {
	buf := append([]byte(nil), prefix...)
	buf = append(buf, `{"run":"`...)
	buf = append(buf, run...)
	buf = append(buf, `","pid":`...)
	buf = strconv.AppendInt(buf, int64(pid), 10)
	buf = append(buf, `,"seq":`...)
	seqOff := len(buf)
	buf = append(buf, bytes.Repeat([]byte{' '}, slotWidth)...)
	buf = append(buf, `,"ts":`...)
	tsOff := len(buf)
	buf = append(buf, bytes.Repeat([]byte{' '}, slotWidth)...)
	bucketOff, bucketEnd := 0, 0
	if buckets > 0 {
		buf = append(buf, `,"`+BucketField+`":"`...)
		bucketOff = len(buf)
		buf = append(buf, bytes.Repeat([]byte{'0'}, bucketWidth(buckets))...)
		bucketEnd = len(buf)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"pad":"`...)
	buf = append(buf, bytes.Repeat([]byte{'x'}, pad)...)
	buf = append(buf, `"}`...)
	buf = append(buf, suffix...)
	b := &Body{buf: buf, seqOff: seqOff, tsOff: tsOff, bucketOff: bucketOff, bucketEnd: bucketEnd, buckets: uint64(max(buckets, 0))}
	b.Set(0, 0)
	return b
}

// Set patches the sequence number, the send timestamp (Unix ns) and, with
// buckets, the bucket: seq mod buckets.
func (b *Body) Set(seq uint64, tsNanos int64) {
	putSlot(b.buf[b.seqOff:b.seqOff+slotWidth], seq)
	if tsNanos < 0 {
		tsNanos = 0
	}
	putSlot(b.buf[b.tsOff:b.tsOff+slotWidth], uint64(tsNanos))
	if b.buckets > 0 {
		putBucket(b.buf[b.bucketOff:b.bucketEnd], seq%b.buckets)
	}
}

// Bytes returns the body; it is patched in place by Set.
func (b *Body) Bytes() []byte { return b.buf }

// putSlot writes v right-aligned in slot, padding on the left with spaces.
func putSlot(slot []byte, v uint64) {
	i := len(slot)
	for {
		i--
		slot[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	for i > 0 {
		i--
		slot[i] = ' '
	}
}

// newRunID returns 8 random hex characters identifying one run, so that
// frames from other traffic on a shared deployment can be told apart.
func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// eventFields are the fields a sampled frame yields.
type eventFields struct {
	run []byte // sub-slice of the parsed line
	pid int64
	seq int64
	ts  int64
}

// maxEventDepth bounds how deep parseEvent looks for the event's fields.
const maxEventDepth = 4

// parseEvent extracts run, pid, seq and ts from a JSON event line without
// a full JSON decode: one forward pass over the members of the top-level
// object, descending into object values (up to maxEventDepth levels) until
// one object holds all four, so the fields are found wherever a server's
// envelope puts the event (Centrifugo: {"channel":…,"pub":{"data":{…}}}).
// Keys may appear in any order (the service appends user_ip, the baseline
// sorts keys) and numbers may have been re-encoded in exponent form.
func parseEvent(p []byte) (eventFields, bool) {
	f, found, _ := parseObject(p, skipSpace(p, 0), 0)
	return f, found
}

// parseObject parses the object at p[i]. It returns the fields of the
// first object, this one or one nested in it, that holds all four (found),
// or, when none does, the index after this object (-1 when it is
// malformed). It stops reading as soon as it has found them.
func parseObject(p []byte, i, depth int) (f eventFields, found bool, end int) {
	const (
		hasRun = 1 << iota
		hasPid
		hasSeq
		hasTs
		hasAll = hasRun | hasPid | hasSeq | hasTs
	)
	if i >= len(p) || p[i] != '{' {
		return f, false, -1
	}
	var have uint8
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return f, false, i + 1
	}
	for {
		if i >= len(p) || p[i] != '"' {
			return f, false, -1
		}
		keyEnd := bytes.IndexByte(p[i+1:], '"')
		if keyEnd < 0 {
			return f, false, -1
		}
		key := p[i+1 : i+1+keyEnd]
		i = skipSpace(p, i+2+keyEnd)
		if i >= len(p) || p[i] != ':' {
			return f, false, -1
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return f, false, -1
		}
		var ok bool
		switch string(key) {
		case "run":
			var end int
			if f.run, end, ok = stringAt(p, i); ok {
				have |= hasRun
				i = end
			}
		case "pid":
			f.pid, i, ok = numberAt(p, i)
			have |= hasPid
		case "seq":
			f.seq, i, ok = numberAt(p, i)
			have |= hasSeq
		case "ts":
			f.ts, i, ok = numberAt(p, i)
			have |= hasTs
		default:
			if p[i] == '{' && depth < maxEventDepth {
				inner, innerFound, end := parseObject(p, i, depth+1)
				if innerFound {
					return inner, true, 0
				}
				i, ok = end, end >= 0
			} else {
				i, ok = skipValue(p, i)
			}
		}
		if !ok {
			return f, false, -1
		}
		if have == hasAll {
			return f, true, 0
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return f, false, -1
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return f, false, i + 1
		default:
			return f, false, -1
		}
	}
}

// stringAt returns the raw contents of the JSON string starting at p[i]
// (escape sequences are not decoded) and the index after it.
func stringAt(p []byte, i int) ([]byte, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, i, false
	}
	end, ok := stringEnd(p, i+1)
	if !ok {
		return nil, i, false
	}
	return p[i+1 : end-1], end, true
}

// stringEnd returns the index after the closing quote of a string whose
// contents start at p[i].
func stringEnd(p []byte, i int) (int, bool) {
	for {
		q := bytes.IndexByte(p[i:], '"')
		if q < 0 {
			return 0, false
		}
		i += q
		// Count the backslashes before the quote: odd means escaped.
		bs := 0
		for k := i - 1; k >= 0 && p[k] == '\\'; k-- {
			bs++
		}
		i++
		if bs%2 == 0 {
			return i, true
		}
	}
}

// numberAt parses the JSON number at p[i]. Integers are parsed exactly;
// fractional or exponent forms as float64, truncated.
func numberAt(p []byte, i int) (int64, int, bool) {
	j := i
	if j < len(p) && p[j] == '-' {
		j++
	}
	digits := j
	var v int64
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		v = v*10 + int64(p[j]-'0')
		j++
	}
	if j == digits {
		return 0, i, false
	}
	if j < len(p) && (p[j] == '.' || p[j] == 'e' || p[j] == 'E') {
		for j < len(p) && (p[j] == '.' || p[j] == 'e' || p[j] == 'E' || p[j] == '+' || p[j] == '-' || (p[j] >= '0' && p[j] <= '9')) {
			j++
		}
		fv, err := strconv.ParseFloat(string(p[i:j]), 64)
		if err != nil {
			return 0, i, false
		}
		return int64(fv), j, true
	}
	if p[i] == '-' {
		v = -v
	}
	return v, j, true
}

// skipValue skips the JSON value at p[i] (string, number, literal, or a
// nested object/array, matched by bracket depth outside strings).
func skipValue(p []byte, i int) (int, bool) {
	switch p[i] {
	case '"':
		return stringEnd(p, i+1)
	case '{', '[':
		depth := 0
		for i < len(p) {
			switch p[i] {
			case '"':
				end, ok := stringEnd(p, i+1)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	default:
		for i < len(p) && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' {
			i++
		}
		return i, true
	}
}

// jsonValueStart returns the index just after `key` and the following colon
// (and whitespace) in p, or -1.
func jsonValueStart(p, key []byte) int {
	i := bytes.Index(p, key)
	if i < 0 {
		return -1
	}
	i += len(key)
	i = skipSpace(p, i)
	if i >= len(p) || p[i] != ':' {
		return -1
	}
	return skipSpace(p, i+1)
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// jsonInt parses the number following key (found by substring search; used
// for the rare gap events).
func jsonInt(p, key []byte) (int64, bool) {
	i := jsonValueStart(p, key)
	if i < 0 {
		return 0, false
	}
	v, _, ok := numberAt(p, i)
	return v, ok
}

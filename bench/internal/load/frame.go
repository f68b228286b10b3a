package load

import (
	"bytes"
)

// FrameScanner counts Server-Sent Events in a byte stream without parsing
// every frame.
//
// The stream is fed in arbitrary pieces (a frame may be split anywhere across
// reads). The scanner walks the bytes with bytes.IndexByte looking for line
// feeds, which is one vectorised pass over the data; per line it only looks at
// the first few bytes to classify the line (data, event, comment or other
// field). A block ends at an empty line. A block counts as a delivery when it
// carries at least one data line and no event type other than "message";
// comment-only blocks, retry hints and named events such as "gap" are counted
// separately and never as deliveries.
//
// Line endings may be LF or CRLF. A lone CR line ending is not supported (the
// service, the baselines and Centrifugo only emit LF).
//
// Every Nth data block (see SampleEvery) has its first data line copied so the
// caller can parse it; all other frames are only counted.
//
// With EventPrefix set (Centrifugo, whose connect reply and pings are data
// blocks too), a data block is an event only when the payload of its first
// data line starts with EventPrefix; the others are counted in Control.
//
// A FrameScanner is not safe for concurrent use; its zero value (plus the
// options) is ready to use.
type FrameScanner struct {
	// Data is the number of delivered data events ("message" events).
	Data int64
	// Comments is the number of blocks made only of comments (greeting,
	// heartbeats) or other non-data fields.
	Comments int64
	// Retries is the number of blocks carrying a retry field but no data.
	Retries int64
	// Gaps is the number of "gap" events.
	Gaps int64
	// GapMissed sums the "missed" counts announced by gap events.
	GapMissed int64
	// Named is the number of data blocks with an event type other than
	// "message" and "gap".
	Named int64
	// Control is the number of data blocks that are not events because
	// their payload does not start with EventPrefix.
	Control int64
	// Blocks is the total number of complete blocks seen (of any kind).
	Blocks int64

	// EventPrefix, when not nil, is how the payload of an event's first
	// data line starts (see the type's comment).
	EventPrefix []byte
	// OnControl, when set, receives the payload of the first data line of
	// every control block (only with EventPrefix; at most maxCapture
	// bytes). The slice is only valid during the call.
	OnControl func(payload []byte)

	// SampleEvery selects 1 in N data events for OnSample; 0 disables sampling.
	SampleEvery int64
	// SamplePhase shifts which events are sampled (so that many listeners do
	// not all sample the same events).
	SamplePhase int64
	// OnSample receives the payload of the first data line of a sampled data
	// event (without the "data:" prefix and without the line ending). The
	// slice is only valid during the call.
	OnSample func(payload []byte)

	// OnEvent, when set, receives the payload of the first data line of
	// every data event (at most maxCapture bytes), sampled or not: the
	// listeners check each one against their filter. The slice is only
	// valid during the call.
	OnEvent func(payload []byte)

	// line state
	lineLen  int
	kind     lineKind
	prefix   [prefixCap]byte
	plen     int
	capture  bool   // the line is being copied into captured
	captured []byte // the block's first data line (up to maxCapture bytes)

	// block state
	hasData     bool
	hasRetry    bool
	eventKind   eventKind
	countdown   int64 // data blocks until the next sample
	blockSample bool  // captured holds the first data line of this block
	sampleThis  bool  // the block was picked for sampling
	truncated   bool  // captured holds only the first maxCapture bytes
	sawLine     bool  // the block has at least one non-blank line
}

type lineKind uint8

const (
	linePending lineKind = iota
	lineData
	lineEvent
	lineComment
	lineRetry
	lineOther
)

type eventKind uint8

const (
	eventMessage eventKind = iota
	eventGap
	eventNamed
)

const (
	prefixCap  = 32
	maxCapture = 64 << 10
)

// Feed consumes the next piece of the (de-chunked) stream.
func (s *FrameScanner) Feed(p []byte) {
	for len(p) > 0 {
		// Fast path: a whole block made of an optional id line and one data
		// line, at the start of a block: the shape of nearly every frame.
		if s.lineLen == 0 && !s.sawLine {
			if line, n, ok := wholeBlock(p); ok {
				s.Blocks++
				if s.EventPrefix != nil && !bytes.HasPrefix(dataPayload(line), s.EventPrefix) {
					s.Control++
					if s.OnControl != nil {
						s.OnControl(dataPayload(line))
					}
				} else {
					s.Data++
					if s.OnEvent != nil {
						s.OnEvent(dataPayload(line))
					}
					if s.takeSample() && s.OnSample != nil {
						s.OnSample(dataPayload(line))
					}
				}
				p = p[n:]
				continue
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.linePart(p)
			return
		}
		if i > 0 {
			s.linePart(p[:i])
		}
		s.endLine()
		p = p[i+1:]
	}
}

// wholeBlock recognises, at the start of p, a whole block made of an
// optional id line and one data line ending in LF: "[id: …\n]data:…\n\n".
// It returns the data line (without its LF) and the block's length.
func wholeBlock(p []byte) (line []byte, n int, ok bool) {
	start := 0
	if len(p) > 3 && p[0] == 'i' && p[1] == 'd' && p[2] == ':' {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return nil, 0, false
		}
		start = i + 1
	}
	q := p[start:]
	if len(q) <= 6 || q[0] != 'd' || string(q[:5]) != "data:" {
		return nil, 0, false
	}
	i := bytes.IndexByte(q, '\n')
	if i < 0 || i+1 >= len(q) || q[i+1] != '\n' {
		return nil, 0, false
	}
	return q[:i], start + i + 2, true
}

// linePart handles bytes of the current line (no line feed inside).
func (s *FrameScanner) linePart(seg []byte) {
	s.lineLen += len(seg)
	if s.kind == linePending || s.kind == lineEvent {
		n := copy(s.prefix[s.plen:], seg)
		s.plen += n
		if s.kind == linePending {
			if s.plen < 6 {
				return // not enough bytes to classify yet
			}
			s.classify(false)
			if s.capture {
				s.captured = append(s.captured[:0], s.prefix[:s.plen]...)
				s.captured = append(s.captured, seg[n:]...)
			}
		}
		return
	}
	if s.capture {
		if len(s.captured)+len(seg) > maxCapture {
			// Too long to be one of our events: keep the start (enough
			// to classify the block), never sample it.
			s.captured = append(s.captured, seg[:maxCapture-len(s.captured)]...)
			s.capture = false
			s.truncated = true
			return
		}
		s.captured = append(s.captured, seg...)
	}
}

// classify decides the kind of the current line from its first bytes. final
// is true when the whole line is in prefix (the line ended).
func (s *FrameScanner) classify(final bool) {
	p := s.prefix[:s.plen]
	switch {
	case len(p) > 0 && p[0] == ':':
		s.kind = lineComment
	case bytes.HasPrefix(p, []byte("data:")) || (final && isField(p, "data")):
		s.kind = lineData
		if !s.hasData {
			s.sampleThis = s.takeSample()
			s.capture = s.sampleThis || s.eventKind == eventGap || s.EventPrefix != nil || s.OnEvent != nil
		}
	case bytes.HasPrefix(p, []byte("event:")) || (final && isField(p, "event")):
		s.kind = lineEvent
	case bytes.HasPrefix(p, []byte("retry:")):
		s.kind = lineRetry
	default:
		s.kind = lineOther
	}
}

// takeSample counts one data block and reports whether it is to be sampled.
func (s *FrameScanner) takeSample() bool {
	if s.SampleEvery <= 0 {
		return false
	}
	if s.countdown <= 0 { // first data block: apply the phase
		s.countdown = s.SampleEvery - s.SamplePhase%s.SampleEvery
	}
	s.countdown--
	if s.countdown == 0 {
		s.countdown = s.SampleEvery
		return true
	}
	return false
}

// isField reports whether a complete line is exactly the field name (with an
// optional trailing CR), which the SSE format allows for an empty value.
func isField(line []byte, name string) bool {
	line = bytes.TrimSuffix(line, []byte("\r"))
	return string(line) == name
}

func (s *FrameScanner) endLine() {
	blank := s.lineLen == 0 || (s.lineLen == 1 && s.prefix[0] == '\r')
	if blank {
		s.endBlock()
		s.resetLine()
		return
	}
	if s.kind == linePending {
		s.classify(true)
		if s.capture {
			s.captured = append(s.captured[:0], s.prefix[:s.plen]...)
		}
	}
	s.sawLine = true
	switch s.kind {
	case lineData:
		if !s.hasData && (s.capture || s.truncated) {
			s.blockSample = true
		}
		s.hasData = true
	case lineEvent:
		s.eventKind = eventMessage
		if s.lineLen > prefixCap {
			s.eventKind = eventNamed
			break
		}
		name := fieldValue(s.prefix[:s.plen], len("event"))
		switch string(name) {
		case "", "message":
		case "gap":
			s.eventKind = eventGap
		default:
			s.eventKind = eventNamed
		}
	case lineRetry:
		s.hasRetry = true
	}
	s.resetLine()
}

// fieldValue returns the value of "name: value" (one optional space after the
// colon, trailing CR removed).
func fieldValue(line []byte, nameLen int) []byte {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) <= nameLen {
		return nil
	}
	v := line[nameLen+1:]
	if len(v) > 0 && v[0] == ' ' {
		v = v[1:]
	}
	return v
}

func (s *FrameScanner) resetLine() {
	s.lineLen = 0
	s.kind = linePending
	s.plen = 0
	s.capture = false
}

func (s *FrameScanner) endBlock() {
	if !s.sawLine {
		// Consecutive blank lines: nothing to dispatch.
		return
	}
	s.Blocks++
	complete := s.blockSample && !s.truncated
	switch {
	case s.hasData && s.eventKind == eventMessage && s.EventPrefix != nil &&
		(!s.blockSample || !bytes.HasPrefix(dataPayload(s.captured), s.EventPrefix)):
		s.Control++
		if s.OnControl != nil {
			s.OnControl(dataPayload(s.captured))
		}
	case s.hasData && s.eventKind == eventMessage:
		s.Data++
		if s.OnEvent != nil {
			s.OnEvent(dataPayload(s.captured)) // truncated past maxCapture
		}
		if complete && s.sampleThis && s.OnSample != nil {
			s.OnSample(dataPayload(s.captured))
		}
	case s.hasData && s.eventKind == eventGap:
		s.Gaps++
		if complete {
			s.GapMissed += parseMissed(dataPayload(s.captured))
		}
	case s.hasData:
		s.Named++
	case s.hasRetry:
		s.Retries++
	default:
		s.Comments++
	}
	s.hasData = false
	s.hasRetry = false
	s.eventKind = eventMessage
	s.blockSample = false
	s.sampleThis = false
	s.truncated = false
	s.captured = s.captured[:0]
	s.sawLine = false
}

// dataPayload strips "data:" (plus one optional space) and a trailing CR.
func dataPayload(line []byte) []byte {
	return fieldValue(line, len("data"))
}

// parseMissed extracts the integer after "missed": in a gap payload; it returns
// 0 when absent.
func parseMissed(p []byte) int64 {
	v, ok := jsonInt(p, []byte(`"missed"`))
	if !ok {
		return 0
	}
	return v
}

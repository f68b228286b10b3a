package server

// Building an event's frame once, without copying its payload.
//
// A frame is its head ("id: ...\n", "event: ...\n" for a named event,
// "topic: ...\n" for an event on a topic other than the default one,
// "data: "), the payload (compact JSON) and "\n\n". The payload is known
// before the id: a POST is validated first, and only an accepted event takes
// a number. So the payload is built into a buffer that starts with room for
// the head, and once the event is numbered the head is written right before
// the payload, inside that room: the frame is a sub-slice of the buffer, with
// no copy.
//
//	buf: [ ....... room ....... | payload | \n\n ]
//	       [ id: r1-7\ndata: | payload | \n\n ]  <- the frame

// frameHead is what an event's frame head says but for the event's number.
type frameHead struct {
	event []byte // the event's name; empty for a plain message
	topic string // the event's topic; empty or DefaultTopic: no topic line
}

// maxIDDigits is the most digits of an event number.
const maxIDDigits = 20

// room returns the most bytes the head takes, whatever the id space.
func (h frameHead) room() int {
	n := len(idPrefix) + maxSpacePrefix + maxIDDigits + 1 + len(dataPrefix)
	if len(h.event) > 0 {
		n += len(eventPrefix) + len(h.event) + 1
	}
	if h.hasTopicLine() {
		n += len(topicPrefix) + len(h.topic) + 1
	}
	return n
}

func (h frameHead) hasTopicLine() bool { return h.topic != "" && h.topic != DefaultTopic }

// appendTo appends the head of event n of space sp: its id line, its event
// line if it is named, its topic line if it is on a topic, and the data
// line's prefix.
func (h frameHead) appendTo(dst []byte, sp *idSpace, n uint64) []byte {
	dst = append(dst, idPrefix...)
	dst = sp.appendID(dst, n)
	dst = append(dst, '\n')
	if len(h.event) > 0 {
		dst = append(dst, eventPrefix...)
		dst = append(dst, h.event...)
		dst = append(dst, '\n')
	}
	if h.hasTopicLine() {
		dst = append(dst, topicPrefix...)
		dst = append(dst, h.topic...)
		dst = append(dst, '\n')
	}
	return append(dst, dataPrefix...)
}

// newFrameBuf returns a buffer for a frame with room bytes for its head and
// a payload of at most payloadCap bytes: len room, capacity for the payload
// and the frame end. Append the payload to it, then call finishFrame.
func newFrameBuf(room, payloadCap int) []byte {
	return make([]byte, room, room+payloadCap+len(frameEnd))
}

// finishFrame turns buf, whose first room bytes are free and the rest a
// payload, with capacity for the frame end after it, into the frame of event
// n of space sp with head h, and returns it: a sub-slice of buf, capped at its
// end. It does not allocate.
func finishFrame(buf []byte, room int, sp *idSpace, n uint64, h frameHead) []byte {
	var scratch [maxFrameHead]byte
	head := h.appendTo(scratch[:0], sp, n)
	start := room - len(head)
	copy(buf[start:], head)
	end := len(buf) + len(frameEnd)
	return append(buf, frameEnd...)[start:end:end]
}

// maxFrameHead bounds frameHead.room for valid event names and topics.
const maxFrameHead = len(idPrefix) + maxSpacePrefix + maxIDDigits + 1 +
	len(eventPrefix) + maxNameLen + 1 + len(topicPrefix) + maxNameLen + 1 + len(dataPrefix)

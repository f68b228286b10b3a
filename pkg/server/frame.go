package server

// Building an event's frame once, without copying its payload.
//
// A frame is its head ("id: ...\n", "event: ...\n" for a named event,
// "data: "), the payload (compact JSON) and "\n\n". The payload is known
// before the id: a POST is validated first, and only an accepted event takes
// a number. So the payload is built into a buffer that starts with headroom
// free bytes, and once the event is numbered the head is written right before
// the payload, inside that headroom: the frame is a sub-slice of the buffer,
// with no copy.
//
//	buf: [ ....... headroom ....... | payload | \n\n ]
//	              [ id: r1-7\ndata: | payload | \n\n ]  <- the frame

// headroom is the most bytes a frame's head takes.
const headroom = len(idPrefix) + maxIDLen + 1 + len(eventPrefix) + maxNameLen + 1 + len(dataPrefix)

// newFrameBuf returns a buffer for a frame whose payload takes at most
// payloadCap bytes: headroom bytes, and capacity for the payload and the
// frame end. Append the payload to it, then call finishFrame.
func newFrameBuf(payloadCap int) []byte {
	return make([]byte, headroom, headroom+payloadCap+len(frameEnd))
}

// finishFrame turns buf (from newFrameBuf, with the payload appended) into
// the frame of the event numbered n in space sp, named event ("" for none),
// and returns it: a sub-slice of buf. It does not allocate when buf has
// room for the frame end.
func finishFrame(buf []byte, sp *idSpace, n uint64, event []byte) []byte {
	var scratch [headroom]byte
	head := appendHead(scratch[:0], sp, n, event)
	start := headroom - len(head)
	copy(buf[start:], head)
	return append(buf, frameEnd...)[start:]
}

// appendHead appends a frame's head: its id line, its event line if it is
// named, and the data line's prefix.
func appendHead(dst []byte, sp *idSpace, n uint64, event []byte) []byte {
	dst = append(dst, idPrefix...)
	dst = sp.appendID(dst, n)
	dst = append(dst, '\n')
	if len(event) > 0 {
		dst = append(dst, eventPrefix...)
		dst = append(dst, event...)
		dst = append(dst, '\n')
	}
	return append(dst, dataPrefix...)
}

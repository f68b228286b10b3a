package server

import (
	"io"
	"net"
	"sync"
)

// connWriter is a hijacked stream's sink: it buffers what the stream writes
// and sends it with one write per Flush, framed as one HTTP/1.1 chunk (or raw
// for an HTTP/1.0 listener, whose stream ends when the connection closes).
// A batch bigger than maxChunk leaves in several chunks, as bufio.Writer
// would: the buffer never grows with the batch, so a stream far behind costs
// no more memory, and no more copying, than one that keeps up.
//
// The buffer is taken from a pool at the first write after a flush and given
// back by the flush, so an idle listener holds none: its memory is its
// goroutine and its state, not a write buffer.
type connWriter struct {
	c    net.Conn
	buf  *[]byte // nil between flushes
	head []byte  // the response head, sent with the first write
	// via, when set, takes the first write's data instead of c: fasthttp's
	// chunked body writer, which frames it and sends it with the response
	// head (see streamBody).
	via     io.Writer
	err     error
	chunked bool
}

// chunkRoom is the room kept at the start of the buffer for a chunk's size
// line: up to 8 hex digits and CRLF; chunkTail is the CRLF after the data.
const (
	chunkRoom = 8 + 2
	chunkTail = 2
)

// maxChunk is the most data one write carries, unless a single frame is
// bigger. Write buffers are made to hold that with its framing, and
// buffers that grew past maxPooledBuf (for a frame bigger than that) are
// dropped rather than pooled.
//
// 32 KiB: at full speed with 10,000 listeners on the 2-core machine,
// 16 KiB chunks delivered 10.8M events/s, 32 KiB 12.6M and 64 KiB 13.1M,
// with a peak RSS of 300, 433 and 741 MiB (a buffer is held by every stream
// between its first write and its flush). Letting the buffer grow with the
// batch, as before, delivered 5.3M with 1.2-1.4 GiB.
const (
	maxChunk     = 32 << 10
	writeBufSize = chunkRoom + maxChunk + chunkTail
	maxPooledBuf = 4 * writeBufSize
)

var writeBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, writeBufSize)
	return &b
}}

// newConnWriter returns a writer for a stream on c whose response head is
// head: it goes out with the first write, in the same system call.
func newConnWriter(c net.Conn, head []byte, chunked bool) *connWriter {
	return &connWriter{c: c, head: head, chunked: chunked}
}

// Write appends p to the buffer, first sending what the buffer holds when p
// would take it past maxChunk. It never fails: a write error is reported by
// Flush, and what is written after one is dropped.
func (w *connWriter) Write(p []byte) (int, error) {
	switch {
	case w.err != nil:
	case w.buf == nil:
		w.buf = writeBufs.Get().(*[]byte) //nolint:forcetypeassert // the pool holds *[]byte
		*w.buf = append((*w.buf)[:chunkRoom], p...)
	default:
		if n := w.Buffered(); n > 0 && n+len(p) > maxChunk {
			w.send()
		}
		*w.buf = append(*w.buf, p...)
	}
	return len(p), nil
}

// Buffered returns how many bytes the next Flush sends (its data, not its
// chunk framing).
func (w *connWriter) Buffered() int {
	if w.buf == nil {
		return 0
	}
	return len(*w.buf) - chunkRoom
}

// Flush sends what was written since the last flush and gives the buffer
// back.
func (w *connWriter) Flush() error {
	if w.buf == nil {
		return w.err
	}
	if w.err == nil {
		w.send()
	}
	w.release()
	return w.err
}

// send writes what the buffer holds as one chunk, in one write (with the
// response head before it the first time), and empties the buffer.
func (w *connWriter) send() {
	b := *w.buf
	out := b[chunkRoom:]
	if w.via != nil {
		_, w.err = w.via.Write(out)
		w.via = nil
		*w.buf = b[:chunkRoom]
		return
	}
	if w.chunked {
		// "<size in hex>\r\n" right before the data, "\r\n" after it.
		var size [chunkRoom]byte
		line := appendHex(size[:0], uint64(len(out)))
		line = append(line, '\r', '\n')
		start := chunkRoom - len(line)
		copy(b[start:], line)
		b = append(b, '\r', '\n')
		out = b[start:]
	}
	if w.head != nil {
		bufs := net.Buffers{w.head, out} // one writev
		_, w.err = bufs.WriteTo(w.c)
		w.head = nil
	} else {
		_, w.err = w.c.Write(out)
	}
	*w.buf = b[:chunkRoom]
}

// release gives the buffer back to the pool, if it holds one.
func (w *connWriter) release() {
	if w.buf == nil {
		return
	}
	if cap(*w.buf) <= maxPooledBuf {
		*w.buf = (*w.buf)[:0]
		writeBufs.Put(w.buf)
	}
	w.buf = nil
}

// finish ends a chunked body with the last chunk, if nothing failed.
func (w *connWriter) finish() {
	w.release()
	if w.chunked && w.err == nil && w.head == nil {
		_, w.err = w.c.Write([]byte("0\r\n\r\n"))
	}
}

func appendHex(dst []byte, n uint64) []byte {
	const digits = "0123456789abcdef"
	if n == 0 {
		return append(dst, '0')
	}
	var tmp [16]byte
	i := len(tmp)
	for n > 0 {
		i--
		tmp[i] = digits[n&0xf]
		n >>= 4
	}
	return append(dst, tmp[i:]...)
}

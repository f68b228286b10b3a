package server

import (
	"net"
	"sync"
)

// connWriter is a hijacked stream's sink: it buffers what the stream writes
// and sends it with one write per Flush, framed as one HTTP/1.1 chunk (or raw
// for an HTTP/1.0 listener, whose stream ends when the connection closes).
//
// The buffer is taken from a pool at the first write after a flush and given
// back by the flush, so an idle listener holds none: its memory is its
// goroutine and its state, not a write buffer.
type connWriter struct {
	c       net.Conn
	buf     *[]byte // nil between flushes
	head    []byte  // the response head, sent with the first flush
	err     error
	chunked bool
}

// chunkRoom is the room kept at the start of the buffer for a chunk's size
// line: up to 8 hex digits and CRLF.
const chunkRoom = 8 + 2

// writeBufSize is the initial capacity of a pooled write buffer; it grows
// for bigger batches, and buffers that grew past maxPooledBuf are dropped.
const (
	writeBufSize = 16 << 10
	maxPooledBuf = 256 << 10
)

var writeBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, writeBufSize)
	return &b
}}

// newConnWriter returns a writer for a stream on c whose response head is
// head: it goes out with the first flush, in the same system call.
func newConnWriter(c net.Conn, head []byte, chunked bool) *connWriter {
	return &connWriter{c: c, head: head, chunked: chunked}
}

// Write appends p to the buffer. It never fails: a write error is reported
// by Flush.
func (w *connWriter) Write(p []byte) (int, error) {
	if w.buf == nil {
		w.buf = writeBufs.Get().(*[]byte) //nolint:forcetypeassert // the pool holds *[]byte
		*w.buf = (*w.buf)[:chunkRoom]
	}
	*w.buf = append(*w.buf, p...)
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

// Flush sends what was written since the last flush, as one chunk, in one
// write, and gives the buffer back.
func (w *connWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.buf == nil {
		return nil
	}
	b := *w.buf
	out := b[chunkRoom:]
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
	w.release(b)
	return w.err
}

func (w *connWriter) release(b []byte) {
	if cap(b) <= maxPooledBuf {
		*w.buf = b[:0]
		writeBufs.Put(w.buf)
	}
	w.buf = nil
}

// finish ends a chunked body with the last chunk, if nothing failed.
func (w *connWriter) finish() {
	if w.buf != nil {
		w.release(*w.buf)
	}
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

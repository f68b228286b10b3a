package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"strings"
	"testing"
)

// recordConn is a net.Conn that records each write call, or fails them.
type recordConn struct {
	net.Conn // nil: only Write is used
	writes   [][]byte
	fail     error
}

func (c *recordConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordConn) all() []byte { return bytes.Join(c.writes, nil) }

// dechunk decodes a chunked body (without its last chunk) and returns the
// data and the size of each chunk.
func dechunk(t *testing.T, body []byte) (data []byte, sizes []int) {
	t.Helper()
	rest := body
	for len(rest) > 0 {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			t.Fatalf("chunk size line missing in %.40q", rest)
		}
		var n int
		for _, c := range line {
			n = n*16 + strings.IndexByte("0123456789abcdef", c)
		}
		if len(after) < n+2 || string(after[n:n+2]) != "\r\n" {
			t.Fatalf("chunk of %d bytes not closed by CRLF", n)
		}
		data = append(data, after[:n]...)
		sizes = append(sizes, n)
		rest = after[n+2:]
	}
	// The standard library's decoder must agree.
	std, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(append(bytes.Clone(body), "0\r\n\r\n"...))))
	if err != nil || !bytes.Equal(std, data) {
		t.Fatalf("net/http/httputil decodes %d bytes (%v), want %d", len(std), err, len(data))
	}
	return data, sizes
}

func TestConnWriterSendsTheHeadWithTheFirstChunk(t *testing.T) {
	c := &recordConn{}
	w := newConnWriter(c, []byte("HTTP/1.1 200 OK\r\n\r\n"), true)
	_, _ = w.Write([]byte("ab"))
	_, _ = w.Write([]byte("cd"))
	if w.Buffered() != 4 || len(c.writes) != 0 {
		t.Fatalf("before the flush: %d buffered, %d writes", w.Buffered(), len(c.writes))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := string(c.all()); got != "HTTP/1.1 200 OK\r\n\r\n4\r\nabcd\r\n" {
		t.Fatalf("first flush sent %q", got)
	}
	if w.buf != nil || w.Buffered() != 0 {
		t.Fatal("the buffer is held after the flush")
	}
	if err := w.Flush(); err != nil || len(c.all()) != len("HTTP/1.1 200 OK\r\n\r\n4\r\nabcd\r\n") {
		t.Fatalf("an empty flush wrote something (%v)", err)
	}
	_, _ = w.Write([]byte("e"))
	_ = w.Flush()
	w.finish()
	if got := string(c.all()); !strings.HasSuffix(got, "\r\n4\r\nabcd\r\n1\r\ne\r\n0\r\n\r\n") {
		t.Fatalf("stream sent %q", got)
	}
}

// A batch bigger than maxChunk leaves in chunks of at most maxChunk, in
// order, and the buffer never grows past its initial size.
func TestConnWriterSplitsBigBatches(t *testing.T) {
	c := &recordConn{}
	w := newConnWriter(c, nil, true)
	var want []byte
	initial := 0 // the pooled buffer's capacity: writeBufSize, or more if it grew for a big frame before
	for i := range 50 {
		frame := bytes.Repeat([]byte{'a' + byte(i%26)}, 3000+i)
		want = append(want, frame...)
		_, _ = w.Write(frame)
		if i == 0 {
			initial = cap(*w.buf)
		}
		if cap(*w.buf) != initial || initial < writeBufSize {
			t.Fatalf("after %d frames the buffer holds %d bytes, from %d (write buffers hold %d)", i+1, cap(*w.buf), initial, writeBufSize)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, sizes := dechunk(t, c.all())
	if !bytes.Equal(got, want) {
		t.Fatal("the chunks do not carry the frames in order")
	}
	if len(sizes) != len(c.writes) || len(sizes) < len(want)/maxChunk+1 {
		t.Fatalf("%d chunks in %d writes for %d bytes", len(sizes), len(c.writes), len(want))
	}
	for _, n := range sizes {
		if n > maxChunk {
			t.Fatalf("a chunk of %d bytes, above %d", n, maxChunk)
		}
	}
}

// A frame bigger than maxChunk goes alone, whole, in one chunk.
func TestConnWriterBigFrame(t *testing.T) {
	c := &recordConn{}
	w := newConnWriter(c, nil, true)
	big := bytes.Repeat([]byte("x"), maxChunk+100)
	_, _ = w.Write([]byte("small"))
	_, _ = w.Write(big)
	_, _ = w.Write([]byte("tail"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, sizes := dechunk(t, c.all())
	if string(got) != "small"+string(big)+"tail" || len(sizes) != 3 || sizes[1] != len(big) {
		t.Fatalf("chunks %v", sizes)
	}
}

// For an HTTP/1.0 listener the bytes go out as they are.
func TestConnWriterRaw(t *testing.T) {
	c := &recordConn{}
	w := newConnWriter(c, []byte("HEAD\r\n\r\n"), false)
	_, _ = w.Write(bytes.Repeat([]byte("y"), maxChunk))
	_, _ = w.Write([]byte("z"))
	_ = w.Flush()
	w.finish()
	if got := c.all(); string(got) != "HEAD\r\n\r\n"+strings.Repeat("y", maxChunk)+"z" {
		t.Fatalf("sent %d bytes: %.30q…", len(got), got)
	}
}

// A failed write is reported by Flush, every later Flush reports it too,
// and what is written after it is dropped rather than buffered.
func TestConnWriterError(t *testing.T) {
	broken := errors.New("broken pipe")
	c := &recordConn{fail: broken}
	w := newConnWriter(c, nil, true)
	_, _ = w.Write([]byte("a"))
	if err := w.Flush(); !errors.Is(err, broken) {
		t.Fatalf("Flush: %v", err)
	}
	for range 3 {
		if n, err := w.Write(bytes.Repeat([]byte("b"), maxChunk)); n != maxChunk || err != nil {
			t.Fatalf("Write after the failure: %d, %v", n, err)
		}
	}
	if w.Buffered() != 0 {
		t.Fatalf("%d bytes buffered after the failure", w.Buffered())
	}
	if err := w.Flush(); !errors.Is(err, broken) {
		t.Fatalf("second Flush: %v", err)
	}
	w.finish() // no last chunk on a broken connection, and no panic
}

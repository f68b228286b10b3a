package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// conn is every connection the service accepts: the TCP connection itself (so
// the hang-up watcher can reach its descriptor through SyscallConn), plus two
// behaviours on Close:
//
//   - a close hook, which tells a stream at once that its connection was
//     closed under it (by fasthttp, when a write deadline fired), instead of
//     at its next write;
//   - an aborting close (a reset), for a listener the service cuts, and for
//     any connection whose write timed out: a graceful close would leave
//     what is queued for the peer in the kernel's send buffer until it reads
//     it or goes away, and a peer that stopped reading does neither;
//   - a draining close, as net/http does it for the same reason: when the
//     server refuses a request before reading its body (413), the client
//     may still be sending that body, and closing a socket with unread data
//     makes the kernel answer with a reset, which can destroy the answer
//     before the client reads it. A connection marked for draining shuts
//     down its sending side only (the client reads the answer and the end of
//     the stream), reads and discards for a bounded time and amount, and
//     only then closes. A stream the service ends is closed the same way,
//     so that the listener reads its end. If the peer has not closed its
//     side when the time is up (it stopped reading, say), the connection is
//     reset: the kernel would otherwise keep what is queued for it.
type conn struct {
	*net.TCPConn
	drains   *drainSet
	onClose  atomic.Pointer[func()]
	writeErr atomic.Pointer[error] // the first write error, for the stream to tell why it ended
	drain    atomic.Bool
	abort    atomic.Bool // reset the connection when it is closed
}

const (
	drainTimeout = 5 * time.Second
	drainMax     = 64 << 20 // bytes discarded at most
)

// connListener wraps accepted TCP connections in conn.
type connListener struct {
	net.Listener
	drains *drainSet
}

func (l connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return &conn{TCPConn: tc, drains: l.drains}, nil
	}
	return c, err
}

// drainOnClose marks c, if it is a conn, for a draining close.
func drainOnClose(c net.Conn) {
	if dc, ok := asConn(c); ok {
		dc.drain.Store(true)
	}
}

// asConn returns the service's conn under c: c itself, or the connection a
// handoffConn or a fasthttp hijacked connection wraps.
func asConn(c net.Conn) (*conn, bool) {
	for {
		switch v := c.(type) {
		case *conn:
			return v, true
		case *handoffConn:
			return v.conn, true
		case interface{ UnsafeConn() net.Conn }:
			c = v.UnsafeConn()
		default:
			return nil, false
		}
	}
}

// Write writes to the connection, recording its first error.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	if err != nil {
		c.writeErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

// writeError returns the first error a write to the connection returned.
func (c *conn) writeError() error {
	if p := c.writeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// setCloseHook makes fn run once when c is closed; nil removes it.
func (c *conn) setCloseHook(fn func()) {
	if fn == nil {
		c.onClose.Store(nil)
		return
	}
	c.onClose.Store(&fn)
}

// abortOnClose makes Close reset the connection: the kernel then drops what
// is still queued for the peer, at once.
func (c *conn) abortOnClose() { c.abort.Store(true) }

func (c *conn) Close() error {
	if fn := c.onClose.Swap(nil); fn != nil {
		(*fn)()
	}
	var ne net.Error
	if err := c.writeError(); err != nil && errors.As(err, &ne) && ne.Timeout() {
		// A write timed out: the peer stopped reading. Whoever closes (the
		// stream, or fasthttp after its own write failed), what is queued
		// for it is dropped.
		c.abort.Store(true)
	}
	if c.abort.Load() {
		_ = c.SetLinger(0) // close sends a reset and frees the send queue
		return c.TCPConn.Close()
	}
	if !c.drain.Load() {
		return c.TCPConn.Close()
	}
	if err := c.CloseWrite(); err != nil {
		return c.TCPConn.Close()
	}
	c.drains.start(c.TCPConn)
	return nil
}

// drainSet runs the draining closes and ends them all at shutdown.
type drainSet struct {
	conns map[*net.TCPConn]struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	done  bool
}

func (d *drainSet) start(c *net.TCPConn) {
	d.mu.Lock()
	if d.done {
		d.mu.Unlock()
		_ = c.Close()
		return
	}
	if d.conns == nil {
		d.conns = make(map[*net.TCPConn]struct{})
	}
	d.conns[c] = struct{}{}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		_ = c.SetReadDeadline(time.Now().Add(drainTimeout))
		_, err := io.CopyN(io.Discard, c, drainMax)
		d.mu.Lock()
		delete(d.conns, c)
		stopping := d.done
		d.mu.Unlock()
		var ne net.Error
		if !stopping && (err == nil || errors.As(err, &ne) && ne.Timeout()) {
			// The peer neither closed nor stopped sending in time: reset,
			// dropping what is still queued for it. (At shutdown, a plain
			// close: the kernel delivers what it can after the process.)
			_ = c.SetLinger(0)
		}
		_ = c.Close()
	}()
}

// stop ends every draining close now and waits for them.
func (d *drainSet) stop() {
	d.mu.Lock()
	d.done = true
	for c := range d.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// handoffConn hands a listener's connection and its admitted stream to the
// stream server (see handOver): its reads return a minimal request (the
// stream server must parse one to call its handler), then io.EOF, so the
// stream server never reads the socket; everything else is the
// connection's.
type handoffConn struct {
	*conn
	stream  *stream // taken by the stream server's handler
	request []byte
}

// handoffRequest is what a handoffConn's reads return.
var handoffRequest = []byte("GET /events HTTP/1.1\r\nHost: stream\r\n\r\n")

func (c *handoffConn) Read(p []byte) (int, error) {
	if len(c.request) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.request)
	c.request = c.request[n:]
	return n, nil
}

// chanListener is a net.Listener whose connections are handed to it by the
// service (push) rather than accepted from the network.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// push hands c to whoever accepts; it returns false, and c is not taken,
// once the listener is closed.
func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder: connections come from handOver, not from an
// address.
func (l *chanListener) Addr() net.Addr { return chanAddr{} }

type chanAddr struct{}

func (chanAddr) Network() string { return "handover" }
func (chanAddr) String() string  { return "handover" }

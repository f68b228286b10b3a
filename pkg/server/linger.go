package server

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Lingering close, as net/http does it for the same reason.
//
// When the server refuses a request before reading its body (413 for a body
// over the limit), the client may still be sending that body. Closing the
// socket with unread data makes the kernel answer with a reset, which can
// destroy the 413 before the client reads it: the client then sees
// "connection reset" instead of the answer. So a connection marked for
// lingering shuts down its sending side only (the client reads the answer
// and the end of the stream), keeps reading and discarding for a bounded time
// and amount, and only then closes.

const (
	lingerTimeout = 5 * time.Second
	lingerMax     = 64 << 20 // bytes discarded at most
)

// lingerListener wraps accepted TCP connections in lingerConn.
type lingerListener struct {
	net.Listener
}

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return &lingerConn{TCPConn: tc}, nil
	}
	return c, err
}

// lingerConn is a TCP connection whose Close lingers once marked. It keeps
// every method of *net.TCPConn, SyscallConn included (the hang-up watcher
// needs it).
type lingerConn struct {
	*net.TCPConn
	linger atomic.Bool
}

// lingerOnClose marks c, if it is a lingerConn, for a lingering close.
func lingerOnClose(c net.Conn) {
	if lc, ok := c.(*lingerConn); ok {
		lc.linger.Store(true)
	}
}

func (c *lingerConn) Close() error {
	if !c.linger.Load() {
		return c.TCPConn.Close()
	}
	if err := c.CloseWrite(); err != nil {
		return c.TCPConn.Close()
	}
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.CopyN(io.Discard, c.TCPConn, lingerMax)
		_ = c.TCPConn.Close()
	}()
	return nil
}

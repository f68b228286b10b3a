package netguard_test

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// scripted is a net.Listener whose Accept returns, in turn, the results
// sent on its script, then blocks until Close. It does no I/O, so it runs
// inside a synctest bubble.
type scripted struct {
	script chan result
	done   chan struct{}
	once   sync.Once
}

type result struct {
	conn net.Conn
	err  error
}

func newScripted(results ...result) *scripted {
	s := &scripted{script: make(chan result, len(results)), done: make(chan struct{})}
	for _, r := range results {
		s.script <- r
	}
	return s
}

func (s *scripted) Accept() (net.Conn, error) {
	select {
	case r := <-s.script:
		return r.conn, r.err
	case <-s.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	}
}

func (s *scripted) Close() error {
	err := net.ErrClosed
	s.once.Do(func() { close(s.done); err = nil })
	return err
}

func (s *scripted) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// forever makes a scripted listener fail with err on every Accept until
// closed.
type forever struct {
	scripted
	err error
}

func newForever(err error) *forever {
	return &forever{scripted: *newScripted(), err: err}
}

func (f *forever) Accept() (net.Conn, error) {
	select {
	case <-f.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	default:
		return nil, f.err
	}
}

// acceptErr is an error as net.TCPListener returns it for errno.
func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// fakeConn is a connection a scripted listener hands out.
type fakeConn struct{ net.Conn }

// retry is one call of Options.OnRetry.
type retry struct {
	err   error
	delay time.Duration
	at    time.Time
}

var errBoom = errors.New("boom")

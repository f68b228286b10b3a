//go:build unix

package load

import (
	"io"
	"net"
	"syscall"
)

// readConn reads the stream. On plain TCP connections it waits for
// readability through the runtime poller and only then takes a buffer from
// the shared pool, so idle listeners hold no read buffer at all (10,000 idle
// listeners would otherwise pin 640 MiB of 64 KiB buffers).
func (l *listener) readConn(conn net.Conn) error {
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return l.readRaw(rc)
		}
	}
	return l.readPlain(conn)
}

func (l *listener) readRaw(rc syscall.RawConn) error {
	l.rerr = nil
	if err := rc.Read(l.rawRead); err != nil {
		return err
	}
	return l.rerr
}

// rawReadFn runs inside syscall.RawConn.Read, which calls it again each time
// the socket becomes readable for as long as it returns false. It reads and
// processes everything available, and returns false (wait) as soon as a read
// returns less than a full buffer: the receive queue was empty at that
// instant, so any later data raises a new readiness edge. Staying inside one
// RawConn.Read call matters: a new call would reset the poller's readiness
// flag and force an extra read that only returns EAGAIN, one wasted syscall
// per wake-up. It returns true (stop) on EOF, error, or when a slow listener
// has been greeted.
func (l *listener) rawReadFn(fd uintptr) bool {
	bp := bufPool.Get().(*[]byte)
	buf := *bp
	for {
		n, err := syscall.Read(int(fd), buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			bufPool.Put(bp)
			return false
		case err != nil:
			l.rerr = err
		case n == 0:
			l.rerr = io.EOF
		default:
			l.reads++
			l.rerr = l.process(buf[:n])
			if l.rerr == nil && l.slow && l.isReady {
				l.rerr = errSlowStop
			}
		}
		if l.rerr != nil {
			bufPool.Put(bp)
			return true
		}
		if n < len(buf) {
			bufPool.Put(bp)
			return false
		}
	}
}

//go:build linux

package hangup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Watcher watches sockets for hang-ups with one epoll instance and one
// goroutine, whatever their number. It is safe for concurrent use.
type Watcher struct {
	funcs  map[uint32]func() // registration id -> what to call on hang-up
	wakeFd int               // eventfd: tells the loop to stop
	epFd   int
	done   chan struct{}
	errors atomic.Uint64 // failed waits, retried
	mu     sync.Mutex    // guards funcs, nextID, closed, and the epoll descriptor's life
	nextID uint32
	closed bool
}

// epollWait is unix.EpollWait; tests replace it to inject failures.
var epollWait = unix.EpollWait

// Registration identifies one watched connection; pass it to Remove.
type Registration struct {
	raw syscall.RawConn
	id  uint32
}

// stopID is the epoll data of the wake-up eventfd; registration ids start at 1.
const stopID = 0

// New starts a watcher. Close it to stop its goroutine.
func New() (*Watcher, error) {
	epFd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("hangup: epoll_create1: %w", err)
	}
	wakeFd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epFd)
		return nil, fmt.Errorf("hangup: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: stopID}
	if err := unix.EpollCtl(epFd, unix.EPOLL_CTL_ADD, wakeFd, &ev); err != nil {
		_ = unix.Close(wakeFd)
		_ = unix.Close(epFd)
		return nil, fmt.Errorf("hangup: epoll_ctl: %w", err)
	}
	w := &Watcher{
		funcs:  make(map[uint32]func()),
		epFd:   epFd,
		wakeFd: wakeFd,
		done:   make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

// Watch is Add and Remove in the shape of server.Watcher: it watches conn
// and returns the function that stops watching it.
func (w *Watcher) Watch(conn net.Conn, onHangup func()) (stop func(), err error) {
	r, err := w.Add(conn, onHangup)
	if err != nil {
		return nil, err
	}
	return func() { w.Remove(r) }, nil
}

// Add watches conn and calls onHangup, once, from the watcher's goroutine,
// when the peer closes or resets the connection. onHangup must not block.
// conn's read side is never touched. Call Remove before conn is closed.
//
// A peer that half-closes (shuts down its sending side but still reads) is
// reported as gone too: an event-stream client never does that.
func (w *Watcher) Add(conn net.Conn, onHangup func()) (Registration, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return Registration{}, ErrUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Registration{}, fmt.Errorf("hangup: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return Registration{}, ErrClosed
	}
	w.nextID++
	if w.nextID == stopID {
		w.nextID++
	}
	id := w.nextID
	var ctlErr error
	err = raw.Control(func(fd uintptr) {
		// Edge-triggered and one-shot: one report per connection.
		ev := unix.EpollEvent{
			Events: unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR | unix.EPOLLET | unix.EPOLLONESHOT,
			Fd:     int32(id),
		}
		ctlErr = unix.EpollCtl(w.epFd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		return Registration{}, fmt.Errorf("hangup: watch: %w", err)
	}
	w.funcs[id] = onHangup
	return Registration{raw: raw, id: id}, nil
}

// Remove stops watching. After it returns, the registration's function is
// not called (if it was already running, Remove does not wait for it).
// Calling it after the connection was closed is harmless: the kernel dropped
// the registration with the socket; and after Close: the watcher's epoll
// descriptor, which may by then be another file's, is not touched.
func (w *Watcher) Remove(r Registration) {
	if r.raw == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.funcs, r.id)
	if w.closed {
		return
	}
	// Control fails without calling the function if the connection is
	// already closed, so a reused descriptor number is never touched.
	_ = r.raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(w.epFd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// Errors returns how many times waiting for events failed (and was retried).
func (w *Watcher) Errors() uint64 { return w.errors.Load() }

// Len returns the number of watched connections.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.funcs)
}

// Close stops the watcher's goroutine and waits for it. Pending registrations
// are dropped without being called.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	var one [8]byte // an eventfd counter increment, in native byte order
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(w.wakeFd, one[:])
	<-w.done
	_ = unix.Close(w.wakeFd)
	return unix.Close(w.epFd)
}

// loop waits for hang-ups until Close. A failed wait is counted and retried
// after a back-off (up to a second): detection never stops silently.
func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 128)
	backoff := time.Duration(0)
	for {
		n, err := epollWait(w.epFd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			w.errors.Add(1)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		for _, ev := range events[:n] {
			id := uint32(ev.Fd)
			if id == stopID {
				return
			}
			w.mu.Lock()
			fn := w.funcs[id]
			delete(w.funcs, id)
			w.mu.Unlock()
			if fn != nil {
				fn()
			}
		}
	}
}

package netguard

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Back-off between retries of a failed Accept, as net/http's Server does:
// it starts at MinDelay, doubles after each consecutive failure, and stays
// at MaxDelay.
const (
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
)

// Options configure a [Listener]. The zero value is ready to use.
type Options struct {
	// OnRetry, when set, is called after each failed Accept that will be
	// retried, with the error and the delay before the retry, from the
	// goroutine that called Accept. It is called for every failure, which
	// under descriptor exhaustion may be every few milliseconds: the
	// callee rate-limits what it logs. When OnRetry is nil, the Listener
	// logs instead, through Logger, at most one line per second.
	OnRetry func(err error, delay time.Duration)
	// Logger receives the built-in report when OnRetry is nil; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Listener is a net.Listener whose Accept survives temporary resource
// shortages: EMFILE and ENFILE (out of file descriptors, for the process or
// the system), ENOBUFS and ENOMEM (out of kernel memory) and ECONNABORTED
// (a connection reset while queued). On such an error Accept waits (see
// [MinDelay] and [MaxDelay]) and tries again, so the connections waiting in
// the kernel's backlog are accepted once descriptors are freed. It counts
// these errors and reports them (see [Options]). Other errors are returned
// as they are. On Windows, whose socket errors have other codes, no error is
// retried.
//
// Close closes the wrapped listener and wakes an Accept that is waiting to
// retry: Accept then returns promptly an error wrapping net.ErrClosed (whose
// text fasthttp recognizes as the normal end of Serve).
//
// A Listener is safe for concurrent use, as net.Listener requires; the
// connections it returns are the wrapped listener's own.
type Listener struct {
	inner   net.Listener
	onRetry func(err error, delay time.Duration)
	log     *slog.Logger
	done    chan struct{}
	once    sync.Once
	// retries counts failed Accepts that were retried; read by Retries.
	retries atomic.Uint64
	// unreported counts the failures since the last built-in log line,
	// and lastReport is when that line was written (Unix nanoseconds, 0
	// before the first). Neither publishes anything else.
	unreported atomic.Uint64
	lastReport atomic.Int64
}

// NewListener wraps inner. The Listener owns inner from then on: close it
// through the Listener.
func NewListener(inner net.Listener, opts Options) *Listener {
	log := opts.Logger
	if log == nil && opts.OnRetry == nil {
		log = slog.Default()
	}
	return &Listener{inner: inner, onRetry: opts.OnRetry, log: log, done: make(chan struct{})}
}

// Accept waits for and returns the next connection. It blocks until a
// connection arrives, the Listener is closed, or a permanent error occurs;
// temporary errors are retried as the type's comment says.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err == nil {
			return c, nil
		}
		if l.isClosed() || !temporary(err) {
			return nil, err
		}
		delay = min(max(2*delay, MinDelay), MaxDelay)
		l.retries.Add(1)
		l.report(err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return nil, &net.OpError{Op: "accept", Net: l.inner.Addr().Network(), Addr: l.inner.Addr(), Err: net.ErrClosed}
		}
	}
}

// Close closes the wrapped listener and ends every Accept, including one
// waiting to retry. Closing twice returns the wrapped listener's error for
// a second Close.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.inner.Close()
}

// Addr returns the wrapped listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Retries returns how many failed Accepts have been retried since the
// Listener was made, for metrics. It may be read at any time from any
// goroutine.
func (l *Listener) Retries() uint64 { return l.retries.Load() }

func (l *Listener) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// temporary reports whether err is a shortage that may end by itself.
func temporary(err error) bool {
	for _, e := range [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// report hands a retried failure to OnRetry, or logs it: the first failure
// at once, then at most one line per second, each with the number of
// failures since the previous line.
func (l *Listener) report(err error, delay time.Duration) {
	if l.onRetry != nil {
		l.onRetry(err, delay)
		return
	}
	l.unreported.Add(1)
	now := time.Now().UnixNano()
	last := l.lastReport.Load()
	if last != 0 && now-last < int64(time.Second) {
		return
	}
	if !l.lastReport.CompareAndSwap(last, now) {
		return // another Accept is writing this second's line
	}
	l.log.Warn("netguard: accept failed, retrying",
		"err", err,
		"retry_in", delay,
		"errors", l.unreported.Swap(0),
		"errors_total", l.retries.Load())
}

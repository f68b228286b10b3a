package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// readBufSize is the size of the pooled read buffers. Large reads amortise
// the syscall and scanning set-up over many frames.
const readBufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

var (
	// errSlowStop ends the read loop of a slow listener once it is
	// connected.
	errSlowStop = errors.New("load: slow listener stops reading")
	// errRefused ends a listener whose server sent a refusal control frame.
	errRefused = errors.New("load: the server ended the stream")
)

// listener is one SSE connection.
type listener struct {
	e      *engine
	idx    int
	slow   bool
	filter *listenerFilter // nil: the listener asks for every event

	mu     sync.Mutex
	closer io.Closer // the connection (or response body); nil until connected
	conn   net.Conn  // raw connection when known (for TCP state checks)
	closed bool

	// stream decoding state, owned by the reader goroutine
	head     []byte
	headDone bool
	chunked  bool
	dec      ChunkedDecoder
	sc       FrameScanner
	feed     func([]byte)
	rawRead  func(fd uintptr) bool
	rerr     error
	reads    int64 // read system calls that returned data
	isReady  bool
	// onConnectedRelease frees the connect slot once the greeting arrived.
	onConnectedRelease func()
	lastSeq            []int64
	checked            int64  // sampled frames of this run whose order was checked
	disorder           int64  // sampled frames older than the previous one of the same producer
	dups               int64  // sampled frames equal to the previous one of the same producer
	seqGaps            int64  // missing sequence numbers (only when every frame is sampled)
	foreign            int64  // sampled frames from other runs / traffic
	badParse           int64  // sampled frames that did not parse
	refused            []byte // the refusal control frame, once received
	filterChecked      int64  // data frames checked against the filter
	filterRejected     int64  // data frames the filter rejects: the server's error
	rejectedExample    []byte // the first of them
	rejectedLast       bool   // the filter rejected the last data frame

	// shared with the engine while running
	delivered atomic.Int64 // data events seen so far (with a filter: those it accepts)
	pub       struct {     // non-data block counters, published for the engine
		seen                                               int64 // Blocks-Data at last publish
		gaps, gapMissed, named, comments, retries, control atomic.Int64
	}
	ready atomic.Bool
	gone  atomic.Bool // the stream ended (error or EOF) after connecting
	err   atomic.Pointer[error]
}

func newListener(e *engine, idx int, slow bool) *listener {
	l := &listener{e: e, idx: idx, slow: slow}
	l.sc.SampleEvery = int64(e.cfg.Sample)
	l.sc.SamplePhase = int64(idx)
	l.sc.OnSample = l.onSample
	l.sc.EventPrefix = e.target.wire.eventPrefix
	if l.sc.EventPrefix != nil {
		l.sc.OnControl = l.onControl
	}
	if e.cfg.Filters > 0 {
		l.filter = newListenerFilter(idx, e.cfg.Filters, e.cfg.Buckets)
		l.sc.OnEvent = l.onEvent
	}
	l.feed = l.sc.Feed
	l.rawRead = l.rawReadFn
	if e.cfg.Producers > 0 {
		// The sequence number before the first one the listener is to
		// receive (see onSample).
		first := int64(-1)
		if l.filter != nil {
			first = int64(l.filter.bucket) - l.seqStep()
		}
		l.lastSeq = make([]int64, e.cfg.Producers)
		for i := range l.lastSeq {
			l.lastSeq[i] = first
		}
	}
	return l
}

// query is the query of the listener's GET: its filter, or none.
func (l *listener) query() string {
	if l.filter == nil {
		return ""
	}
	return l.filter.query
}

func (l *listener) setErr(err error) {
	if err == nil {
		return
	}
	l.err.CompareAndSwap(nil, &err)
}

func (l *listener) getErr() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// attach records the live connection, or closes it when the listener was
// already told to close.
func (l *listener) attach(c io.Closer, conn net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return false
	}
	l.closer = c
	l.conn = conn
	return true
}

func (l *listener) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.closer != nil {
		l.closer.Close()
	}
}

// peerGone reports whether the server closed a connection we no longer read.
func (l *listener) peerGone() bool {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c == nil {
		return false
	}
	closed, _ := peerClosed(c)
	return closed
}

// run connects, then reads until the connection is closed. sem bounds the
// number of listeners connecting at once; it is held until the greeting has
// arrived so the server is not flooded with half-open streams.
func (l *listener) run(ctx context.Context, sem chan struct{}, deadline time.Time) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		l.setErr(ctx.Err())
		return
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
		}
	}
	defer release()
	var err error
	if l.e.cfg.Client == ClientNetHTTP {
		err = l.runNetHTTP(ctx, deadline, release)
	} else {
		err = l.runRaw(ctx, deadline, release)
	}
	if errors.Is(err, errSlowStop) || l.isClosed() {
		return // stopped on purpose, not a failure
	}
	l.setErr(err)
	if l.isReady {
		l.gone.Store(true)
	}
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// dialRetry dials until it succeeds or the deadline passes; transient
// failures (refused, reset, out of ports, timeouts) are retried with backoff.
func (l *listener) dialRetry(ctx context.Context, deadline time.Time) (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.e.dialer.dial(ctx)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return nil, err
		}
		if !sleepCtx(ctx, backoff) {
			return nil, ctx.Err()
		}
		if backoff < 500*time.Millisecond {
			backoff *= 2
		}
	}
}

func (l *listener) runRaw(ctx context.Context, deadline time.Time, release func()) error {
	conn, err := l.dialRetry(ctx, deadline)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if !l.attach(conn, conn) {
		return context.Canceled
	}
	if l.slow {
		if tc, ok := conn.(*net.TCPConn); ok {
			// A small receive buffer makes a stalled reader back-pressure the
			// server quickly.
			_ = tc.SetReadBuffer(16 << 10)
		}
	}
	_ = conn.SetWriteDeadline(deadline)
	if _, err := conn.Write(l.e.target.sseRequest(l.query())); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	l.onConnectedRelease = release
	if l.e.cfg.ReadyOnSend {
		// The server may send nothing, not even the response head, until
		// the first event: the request sent is all there is to wait for.
		l.markReady()
		if l.slow {
			return errSlowStop // never reads at all
		}
	}
	return l.readConn(conn)
}

// process consumes bytes read from the connection.
func (l *listener) process(p []byte) error {
	if !l.headDone {
		l.head = append(l.head, p...)
		end := bytes.Index(l.head, []byte("\r\n\r\n"))
		if end < 0 {
			if len(l.head) > 64<<10 {
				return errors.New("response header too large")
			}
			return nil
		}
		status, chunked, err := parseResponseHead(l.head[:end+2])
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /events: HTTP %d %s", status, firstLine(l.head))
		}
		l.headDone = true
		l.chunked = chunked
		p = l.head[end+4:]
		l.head = nil
		if !l.e.cfg.WaitGreeting {
			l.markReady()
		}
	}
	if len(p) > 0 {
		if l.chunked {
			if err := l.dec.Decode(p, l.feed); err != nil {
				if errors.Is(err, ErrChunkedEnd) {
					return io.EOF
				}
				return err
			}
		} else {
			l.sc.Feed(p)
		}
		// A frame the filter rejects is not a delivery: it is counted
		// apart (filterRejected), and must not make up for a lost one.
		l.delivered.Store(l.sc.Data - l.filterRejected)
		if other := l.sc.Blocks - l.sc.Data; other != l.pub.seen {
			l.pub.seen = other
			l.pub.gaps.Store(l.sc.Gaps)
			l.pub.gapMissed.Store(l.sc.GapMissed)
			l.pub.named.Store(l.sc.Named)
			l.pub.comments.Store(l.sc.Comments)
			l.pub.retries.Store(l.sc.Retries)
			l.pub.control.Store(l.sc.Control)
		}
	}
	if l.refused != nil {
		return fmt.Errorf("%w: %s", errRefused, l.refused)
	}
	if !l.isReady && l.sc.Blocks > 0 && l.e.target.wire.greeting == nil {
		l.markReady()
	}
	return nil
}

// onControl handles a control frame: the greeting makes the listener
// ready, a refusal ends it.
func (l *listener) onControl(p []byte) {
	w := &l.e.target.wire
	switch {
	case !l.isReady && bytes.HasPrefix(p, w.greeting):
		l.markReady()
	case w.refusal != nil && bytes.HasPrefix(p, w.refusal):
		l.refused = append([]byte(nil), p[:min(len(p), 200)]...)
	}
}

func (l *listener) markReady() {
	if l.isReady {
		return
	}
	l.isReady = true
	l.ready.Store(true)
	l.e.readyCount.Add(1)
	if l.onConnectedRelease != nil {
		l.onConnectedRelease()
		l.onConnectedRelease = nil
	}
}

// onSample handles one sampled data frame: end-to-end latency and per
// producer ordering.
func (l *listener) onSample(p []byte) {
	if l.rejectedLast {
		// The frame its filter rejects (onEvent has just seen it) is
		// counted apart; its sequence number is not this listener's.
		return
	}
	f, ok := parseEvent(p)
	if !ok {
		l.badParse++
		return
	}
	if !bytes.Equal(f.run, l.e.runID) {
		l.foreign++
		return
	}
	now := time.Now().UnixNano()
	l.e.e2e.record(l.idx, now-f.ts)
	l.checked++
	if f.pid < 0 || f.pid >= int64(len(l.lastSeq)) {
		return
	}
	last := l.lastSeq[f.pid]
	switch {
	case f.seq == last:
		l.dups++
	case f.seq < last:
		l.disorder++
	default:
		// A filtered listener receives one sequence number in seqStep.
		if step := l.seqStep(); l.sc.SampleEvery == 1 && f.seq != last+step {
			l.seqGaps += (f.seq-last)/step - 1
		}
		l.lastSeq[f.pid] = f.seq
	}
}

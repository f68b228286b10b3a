package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// readBufSize is the size of the pooled read buffers. Large reads amortise
// the syscall and scanning set-up over many frames.
const readBufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// errSlowStop ends the read loop of a slow listener once it is connected.
var errSlowStop = errors.New("slow listener stops reading")

// listener is one SSE connection.
type listener struct {
	e    *engine
	idx  int
	slow bool

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
	checked            int64 // sampled frames of this run whose order was checked
	disorder           int64 // sampled frames older than the previous one of the same producer
	dups               int64 // sampled frames equal to the previous one of the same producer
	seqGaps            int64 // missing sequence numbers (only when every frame is sampled)
	foreign            int64 // sampled frames from other runs / traffic
	badParse           int64 // sampled frames that did not parse

	// shared with the engine while running
	delivered atomic.Int64 // data events seen so far
	pub       struct {     // non-data block counters, published for the engine
		seen                                      int64 // Blocks-Data at last publish
		gaps, gapMissed, named, comments, retries atomic.Int64
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
	l.feed = l.sc.Feed
	l.rawRead = l.rawReadFn
	if e.cfg.Producers > 0 {
		l.lastSeq = make([]int64, e.cfg.Producers)
		for i := range l.lastSeq {
			l.lastSeq[i] = -1
		}
	}
	return l
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
	if _, err := conn.Write(l.e.target.sseRequest()); err != nil {
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

// readPlain reads with a buffer of its own (TLS connections, or platforms
// without raw socket access).
func (l *listener) readPlain(r io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			l.reads++
			if perr := l.process(buf[:n]); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		if l.slow && l.isReady {
			return errSlowStop
		}
	}
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
		l.delivered.Store(l.sc.Data)
		if other := l.sc.Blocks - l.sc.Data; other != l.pub.seen {
			l.pub.seen = other
			l.pub.gaps.Store(l.sc.Gaps)
			l.pub.gapMissed.Store(l.sc.GapMissed)
			l.pub.named.Store(l.sc.Named)
			l.pub.comments.Store(l.sc.Comments)
			l.pub.retries.Store(l.sc.Retries)
		}
	}
	if !l.isReady && l.sc.Blocks > 0 {
		l.markReady()
	}
	return nil
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

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\r'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseResponseHead parses the status line and the headers that matter.
func parseResponseHead(h []byte) (status int, chunked bool, err error) {
	line, rest, _ := bytes.Cut(h, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") {
		return 0, false, fmt.Errorf("bad HTTP status line %q", line)
	}
	status, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, false, fmt.Errorf("bad HTTP status line %q", line)
	}
	for len(rest) > 0 {
		var hl []byte
		hl, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(hl, []byte(":"))
		if !ok {
			continue
		}
		if strings.EqualFold(string(bytes.TrimSpace(k)), "Transfer-Encoding") &&
			strings.Contains(strings.ToLower(string(v)), "chunked") {
			chunked = true
		}
	}
	return status, chunked, nil
}

// onSample handles one sampled data frame: end-to-end latency and per
// producer ordering.
func (l *listener) onSample(p []byte) {
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
		if l.sc.SampleEvery == 1 && f.seq != last+1 {
			l.seqGaps += f.seq - last - 1
		}
		l.lastSeq[f.pid] = f.seq
	}
}

// runNetHTTP is the alternative listener implementation on net/http's client
// (which de-chunks the body itself). It exists to compare costs
// (-client nethttp); the raw implementation is the default.
func (l *listener) runNetHTTP(ctx context.Context, deadline time.Time, release func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.e.target.eventsURL(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	var resp *http.Response
	backoff := 5 * time.Millisecond
	for {
		resp, err = l.e.httpClient.Do(req) //nolint:bodyclose // attached below and closed by listener.close
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("connect: %w", err)
		}
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		if backoff < 500*time.Millisecond {
			backoff *= 2
		}
	}
	if !l.attach(resp.Body, nil) {
		return context.Canceled
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /events: HTTP %s", resp.Status)
	}
	l.headDone = true
	l.chunked = false
	l.onConnectedRelease = release
	if !l.e.cfg.WaitGreeting {
		l.markReady()
	}
	return l.readPlain(resp.Body)
}

package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/hangup"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m)
}

// waitFor bounds every wait for something that should happen promptly. It is
// generous so that a slow machine or -race never makes a test flaky; a test
// that needs it to elapse has failed anyway.
const waitFor = 15 * time.Second

// testServer is a server running in-process on a random loopback port,
// with its ring and hang-up watcher, wired as the application wires them.
type testServer struct {
	*server.Server
	ring     *fanout.Ring
	url      string
	client   *http.Client
	stopOnce sync.Once
	stopErr  error
	stopFn   func() error
}

// start runs a server with the defaults changed by configure, and shuts it
// down when the test ends.
func start(tb testing.TB, configure func(*server.Config)) *testServer {
	tb.Helper()
	return startLogged(tb, configure, testLogHandler(tb))
}

// testRingOptions are the ring options of start and startLogged: the
// application's.
var testRingOptions = fanout.Options{Size: 4096, Permanent: []string{server.DefaultTopic}}

// startBuffered is start with a ring of size frames.
func startBuffered(tb testing.TB, size int, configure func(*server.Config)) *testServer {
	tb.Helper()
	return startWith(tb, configure, fanout.Options{Size: size, Permanent: testRingOptions.Permanent}, testLogHandler(tb))
}

func testLogHandler(tb testing.TB) slog.Handler {
	return slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn})
}

// startLogged is start with the server's logs sent to h.
func startLogged(tb testing.TB, configure func(*server.Config), h slog.Handler) *testServer {
	tb.Helper()
	return startWith(tb, configure, testRingOptions, h)
}

// startWith is startLogged with ring options.
func startWith(tb testing.TB, configure func(*server.Config), ringOpts fanout.Options, h slog.Handler) *testServer {
	tb.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	if configure != nil {
		configure(&cfg)
	}
	if ringOpts.Matcher == nil {
		ringOpts.Matcher = server.FilterMatcher
	}
	watcher, err := hangup.New()
	if err != nil {
		return startWatched(tb, &cfg, ringOpts, h, nil, func() {})
	}
	return startWatched(tb, &cfg, ringOpts, h, watcher, func() { _ = watcher.Close() })
}

// startWatched is startWith with cfg made, and the hang-up watcher given
// (nil: none) with what closes it, after the server.
func startWatched(tb testing.TB, cfg *server.Config, ringOpts fanout.Options, h slog.Handler, watcher server.Watcher, closeWatcher func()) *testServer {
	tb.Helper()
	ring := fanout.New(ringOpts)
	srv, err := server.New(cfg, server.Deps{Ring: ring, Log: slog.New(h), Watcher: watcher})
	if err != nil {
		_ = ring.Close()
		closeWatcher()
		tb.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	ts := &testServer{Server: srv, ring: ring, url: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}}
	ts.stopFn = func() error {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		// The application's order: drain, close the ring, shut down, close
		// the watcher.
		srv.Drain()
		_ = ring.Close()
		err := srv.Shutdown(ctx)
		closeWatcher()
		if serr := <-served; serr != nil && err == nil {
			err = fmt.Errorf("Serve: %w", serr)
		}
		return err
	}
	tb.Cleanup(func() {
		if err := ts.stop(); err != nil {
			tb.Errorf("stop: %v", err)
		}
	})
	return ts
}

// streamers are both ways a stream can be written: the stream tests run for
// each.
var streamers = []server.Streamer{server.StreamWriter, server.StreamHijack}

// bothStreamers runs test once per streamer, as parallel subtests named
// after the streamer (test calls t.Parallel itself).
func bothStreamers(t *testing.T, test func(*testing.T, server.Streamer)) {
	t.Helper()
	for _, st := range streamers {
		t.Run(string(st), func(t *testing.T) { test(t, st) })
	}
}

// withStreamer returns configure with the streamer set first.
func withStreamer(st server.Streamer, configure func(*server.Config)) func(*server.Config) {
	return func(c *server.Config) {
		c.Streamer = st
		if configure != nil {
			configure(c)
		}
	}
}

// stop shuts the server down as the application does; later calls return the
// first one's result.
func (ts *testServer) stop() error {
	ts.stopOnce.Do(func() { ts.stopErr = ts.stopFn() })
	return ts.stopErr
}

// testWriter sends the server's logs to the test log.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// response is what a request got back.
type response struct {
	header http.Header
	body   string
	status int
}

func (ts *testServer) do(tb testing.TB, req *http.Request) response {
	tb.Helper()
	resp, err := ts.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// post sends body to /api/events with the given extra headers (name, value
// pairs).
func (ts *testServer) post(tb testing.TB, body string, headers ...string) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+"/api/events", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return ts.do(tb, req)
}

func (ts *testServer) mustPost(tb testing.TB, body string, headers ...string) {
	tb.Helper()
	if r := ts.post(tb, body, headers...); r.status != http.StatusOK {
		tb.Fatalf("POST %s: status %d, body %s", body, r.status, r.body)
	}
}

// listener is one SSE client connected to /events, reading in the
// background.
type listener struct {
	resp   *http.Response
	msgs   chan sseclient.Message
	done   chan struct{} // closed when the stream ended
	err    error         // why it ended; read after done
	cancel context.CancelFunc
}

// listen connects a listener and waits for its greeting.
func (ts *testServer) listen(tb testing.TB, headers ...string) *listener {
	tb.Helper()
	l := ts.connect(tb, headers...)
	m := l.next(tb)
	if !m.Comment || m.Data != "connected" {
		tb.Fatalf("first message: got %+v, want the greeting comment", m)
	}
	return l
}

// connect opens a stream without waiting for anything.
func (ts *testServer) connect(tb testing.TB, headers ...string) *listener {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.url+"/events", nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := ts.client.Do(req) //nolint:bodyclose // closed by listener.close, registered as a cleanup below
	if err != nil {
		cancel()
		tb.Fatalf("GET /events: %v", err)
	}
	l := &listener{resp: resp, msgs: make(chan sseclient.Message, 1<<16), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(l.done)
		r := sseclient.NewReader(resp.Body)
		for {
			m, err := r.Next()
			if err != nil {
				l.err = err
				return
			}
			l.msgs <- m
		}
	}()
	tb.Cleanup(l.close)
	return l
}

// close disconnects the listener and waits for its reader to stop.
func (l *listener) close() {
	l.cancel()
	_ = l.resp.Body.Close()
	<-l.done
}

// next returns the next message, failing the test if none comes in time.
func (l *listener) next(tb testing.TB) sseclient.Message {
	tb.Helper()
	select {
	case m := <-l.msgs:
		return m
	case <-l.done:
		select {
		case m := <-l.msgs:
			return m
		default:
		}
		tb.Fatalf("stream ended (%v) while waiting for a message", l.err)
	case <-time.After(waitFor):
		tb.Fatalf("no message within %v", waitFor)
	}
	return sseclient.Message{}
}

// nextEvent returns the next event, skipping comments.
func (l *listener) nextEvent(tb testing.TB) sseclient.Message {
	tb.Helper()
	for {
		if m := l.next(tb); !m.Comment {
			return m
		}
	}
}

// waitEnd waits for the stream to end and returns the messages it still
// delivered.
func (l *listener) waitEnd(tb testing.TB) []sseclient.Message {
	tb.Helper()
	select {
	case <-l.done:
	case <-time.After(waitFor):
		tb.Fatalf("stream did not end within %v", waitFor)
	}
	var rest []sseclient.Message
	for {
		select {
		case m := <-l.msgs:
			rest = append(rest, m)
		default:
			return rest
		}
	}
}

// eventually polls cond until it holds, failing after waitFor.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, waitFor, what, cond)
}

// rawStream opens /events over a plain TCP connection and returns it with a
// reader positioned after the response headers, and those headers.
func rawStream(tb testing.TB, ts *testServer, readBuffer int) (*net.TCPConn, *bufio.Reader, string) {
	tb.Helper()
	return rawGet(tb, ts, "/events", readBuffer)
}

// rawGet sends GET target over a plain TCP connection with a receive buffer
// of readBuffer bytes (0: the default) and returns the connection, a reader
// positioned after the response head, and the head.
func rawGet(tb testing.TB, ts *testServer, target string, readBuffer int) (*net.TCPConn, *bufio.Reader, string) {
	tb.Helper()
	addr := strings.TrimPrefix(ts.url, "http://")
	var d net.Dialer
	if readBuffer > 0 {
		// Before connecting, so the window is negotiated for it: shrinking
		// the buffer of an open connection stalls it in retransmissions.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var err error
			if cerr := rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readBuffer)
			}); cerr != nil {
				return cerr
			}
			return err
		}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	tb.Cleanup(func() { _ = conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, addr); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 1024)
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	var head bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			tb.Fatalf("reading headers: %v", err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, br, head.String()
}

// syncBuffer is a log destination safe for concurrent writes and reads.
type syncBuffer = testutil.SyncBuffer

package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

func TestStreamHeadersAndGreetingBeforeAnyEvent(t *testing.T) {
	bothStreamers(t, testStreamHeadersAndGreetingBeforeAnyEvent)
}

func testStreamHeadersAndGreetingBeforeAnyEvent(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts := start(t, withStreamer(streamer, func(c *server.Config) { c.Heartbeat = time.Hour }))
	l := ts.connect(t)
	for name, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive",
		"X-Accel-Buffering": "no", "Access-Control-Allow-Origin": "*",
	} {
		if got := l.resp.Header.Get(name); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	if l.resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", l.resp.StatusCode)
	}
	// No event was posted: the greeting alone must arrive.
	if m := l.next(t); !m.Comment || m.Data != "connected" {
		t.Fatalf("first message: %+v", m)
	}
}

func TestHeartbeat(t *testing.T) { bothStreamers(t, testHeartbeat) }

func testHeartbeat(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts := start(t, withStreamer(streamer, func(c *server.Config) { c.Heartbeat = 30 * time.Millisecond }))
	l := ts.listen(t)
	for range 3 {
		if m := l.next(t); !m.Comment || m.Data != "ping" {
			t.Fatalf("got %+v, want a ping comment", m)
		}
	}
	ts.mustPost(t, `{"a":1}`)
	if m := l.nextEvent(t); m.Data != `{"a":1,"user_ip":"127.0.0.1"}` {
		t.Fatalf("event after heartbeats: %q", m.Data)
	}
}

// seqEvent is the body the ordering tests post.
type seqEvent struct {
	P int `json:"p"`
	N int `json:"n"`
}

// TestOrderAndNoLoss: 50 listeners, concurrent producers; every listener
// gets every event once, and each producer's events in the order it sent
// them.
func TestOrderAndNoLoss(t *testing.T) { bothStreamers(t, testOrderAndNoLoss) }

func testOrderAndNoLoss(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	const (
		listeners   = 50
		producers   = 4
		perProducer = 250
	)
	ts := startBuffered(t, producers*perProducer, withStreamer(streamer, nil))
	ls := make([]*listener, listeners)
	for i := range ls {
		ls[i] = ts.listen(t)
	}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for n := range perProducer {
				r := ts.post(t, fmt.Sprintf(`{"p":%d,"n":%d}`, p, n))
				if r.status != http.StatusOK {
					t.Errorf("POST: %d %s", r.status, r.body)
					return
				}
			}
		})
	}
	errs := make(chan error, listeners)
	for _, l := range ls {
		go func() { errs <- checkOrder(l, producers, perProducer) }()
	}
	wg.Wait()
	for range listeners {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// checkOrder reads producers*perProducer events from l and checks them. It
// gives up when no event came for waitFor: a busy machine may take long to
// post them all, a stalled stream never sends the next one.
func checkOrder(l *listener, producers, perProducer int) error {
	next := make([]int, producers)
	stalled := time.NewTimer(waitFor)
	defer stalled.Stop()
	for got := 0; got < producers*perProducer; {
		select {
		case m := <-l.msgs:
			stalled.Reset(waitFor)
			if m.Comment {
				continue
			}
			if m.Type != "message" {
				return fmt.Errorf("unexpected %s event %s", m.Type, m.Data)
			}
			var e seqEvent
			if err := json.Unmarshal([]byte(m.Data), &e); err != nil {
				return fmt.Errorf("event %q: %w", m.Data, err)
			}
			if e.N != next[e.P] {
				return fmt.Errorf("producer %d: got event %d, want %d", e.P, e.N, next[e.P])
			}
			next[e.P]++
			got++
		case <-stalled.C:
			return fmt.Errorf("only %v events, then nothing for %v", next, waitFor)
		}
	}
	return nil
}

// TestStalledListenerDoesNotSlowOthers: a listener that never reads holds
// nobody back, loses only its own events, and is cut by the write deadline.
func TestStalledListenerDoesNotSlowOthers(t *testing.T) {
	bothStreamers(t, testStalledListenerDoesNotSlowOthers)
}

func testStalledListenerDoesNotSlowOthers(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	const events = 2000
	ts := startBuffered(t, events, withStreamer(streamer, func(c *server.Config) {
		// Long enough that a healthy listener on a loaded machine (the race
		// detector, parallel tests) is never mistaken for a stalled one.
		c.WriteTimeout = 5 * time.Second
	}))
	stalled, _, _ := rawStream(t, ts, 4096) // never read again
	defer stalled.Close()
	healthy := ts.listen(t)
	eventually(t, "both listeners registered", func() bool { return ts.Listeners() == 2 })

	pad := strings.Repeat("x", 8<<10)
	done := make(chan error, 1)
	var got atomic.Int64
	go func() {
		for n := 0; n < events; got.Store(int64(n)) {
			m := <-healthy.msgs
			if m.Comment {
				continue // a heartbeat
			}
			if want := fmt.Sprintf(`{"n":%d,`, n); !strings.HasPrefix(m.Data, want) {
				done <- fmt.Errorf("healthy listener: got %.20q, want %q", m.Data, want)
				return
			}
			n++
		}
		done <- nil
	}()
	for n := range events {
		ts.mustPost(t, fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
	}
	// The healthy listener is not held back: it gets every event, never
	// waiting waitFor for the next one (a busy machine may take long for
	// them all).
	for last, since := int64(-1), time.Now(); ; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(100 * time.Millisecond):
			if n := got.Load(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > waitFor {
				t.Fatalf("healthy listener got %d of %d events, then nothing for %v; health %+v", n, events, waitFor, health(t, ts))
			}
			continue
		}
		break
	}
	// 16 MiB cannot fit in the stalled socket's buffers: its writes block,
	// the deadline passes, and it is released.
	eventually(t, "stalled listener cut", func() bool { return ts.Listeners() == 1 })
	if h := health(t, ts); h.ListenersCut != 1 {
		t.Errorf("listeners_cut: got %d, want 1", h.ListenersCut)
	}
}

// lagSetup opens a listener that stops reading while more events than the
// buffer are posted, so its stream falls behind the ring, then returns a
// reader of what it was sent.
func lagSetup(t *testing.T, streamer server.Streamer, policy server.LagPolicy, events int) (*testServer, *sseclient.Reader) {
	t.Helper()
	ts := startBuffered(t, 16, withStreamer(streamer, func(c *server.Config) {
		c.LagPolicy = policy
		c.WriteTimeout = time.Minute
		c.Heartbeat = time.Hour
	}))
	conn, br, _ := rawStream(t, ts, 4096)
	eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
	pad := strings.Repeat("x", 32<<10)
	for n := range events {
		ts.mustPost(t, fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	return ts, sseclient.NewReader(httputil.NewChunkedReader(br))
}

// TestLaggingListenerIsToldExactlyWhatItMissed: the listener gets a gap
// event for what fell off the buffer, and delivered + missed accounts for
// every event, in order.
func TestLaggingListenerIsToldExactlyWhatItMissed(t *testing.T) {
	bothStreamers(t, testLaggingListenerIsToldExactlyWhatItMissed)
}

func testLaggingListenerIsToldExactlyWhatItMissed(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	const events = 400 // 12.5 MiB: more than the socket buffers hold
	ts, r := lagSetup(t, streamer, server.LagContinue, events)
	readAccountedFor(t, r, events)
	if h := health(t, ts); h.Listeners != 1 || h.EventsMissed == 0 {
		t.Errorf("health: listeners %d, missed %d", h.Listeners, h.EventsMissed)
	}
}

func TestLagPolicyCut(t *testing.T) { bothStreamers(t, testLagPolicyCut) }

func testLagPolicyCut(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts, r := lagSetup(t, streamer, server.LagCut, 400)
	sawGap := false
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream ended with %v, want a clean end", err)
		}
		if m.Type == "gap" {
			sawGap = true
		} else if sawGap && !m.Comment {
			t.Fatalf("event after the gap with policy cut: %+v", m)
		}
	}
	if !sawGap {
		t.Fatal("no gap event before the cut")
	}
	eventually(t, "cut listener released", func() bool { return ts.Listeners() == 0 })
	if h := health(t, ts); h.ListenersCut != 1 {
		t.Errorf("listeners_cut: got %d, want 1", h.ListenersCut)
	}
}

// TestGoneListenerIsReleasedWithoutTraffic: with no event and no heartbeat
// due for an hour, a listener that closes or resets its connection is
// noticed and released anyway.
func TestGoneListenerIsReleasedWithoutTraffic(t *testing.T) {
	bothStreamers(t, testGoneListenerIsReleasedWithoutTraffic)
}

func testGoneListenerIsReleasedWithoutTraffic(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			t.Parallel()
			ts := start(t, withStreamer(streamer, func(c *server.Config) { c.Heartbeat = time.Hour }))
			conn, br, _ := rawStream(t, ts, 0)
			if line, err := br.ReadString('\n'); err != nil || line == "" {
				t.Fatalf("greeting chunk: %q %v", line, err)
			}
			eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
			start := time.Now()
			if reset {
				_ = conn.SetLinger(0)
			}
			_ = conn.Close()
			eventually(t, "listener released", func() bool { return ts.Listeners() == 0 })
			t.Logf("released %v after the client went away", time.Since(start))
		})
	}
}

// TestConnectDisconnectCyclesLeakNothing: many listeners come and go; in the
// end no listener is counted and no goroutine is left (goleak checks the
// rest when the package's tests end). Not parallel: it counts the
// process's stream goroutines, so no other test may have streams open.
func TestConnectDisconnectCyclesLeakNothing(t *testing.T) {
	bothStreamers(t, testConnectDisconnectCyclesLeakNothing)
}

func testConnectDisconnectCyclesLeakNothing(t *testing.T, streamer server.Streamer) {
	ts := start(t, withStreamer(streamer, func(c *server.Config) { c.Heartbeat = time.Hour }))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				l := ts.listen(t)
				l.close()
			}
		})
	}
	wg.Wait()
	eventually(t, "every listener released", func() bool { return ts.Listeners() == 0 })
	ts.client.Transport.(*http.Transport).CloseIdleConnections()
	eventually(t, "no stream goroutine left", func() bool { return streamGoroutines() == 0 })
	if h := health(t, ts); h.ListenersTotal != 200 {
		t.Errorf("listeners_total: got %d, want 200", h.ListenersTotal)
	}
}

func TestMaxListeners(t *testing.T) { bothStreamers(t, testMaxListeners) }

func testMaxListeners(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts := start(t, withStreamer(streamer, func(c *server.Config) {
		c.MaxListeners = 2
		c.Retry = time.Second
	}))
	a := ts.listen(t)
	ts.listen(t)
	turned := ts.connect(t)
	if turned.resp.StatusCode != http.StatusOK || turned.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("listener over the limit: %d %s", turned.resp.StatusCode, turned.resp.Header.Get("Content-Type"))
	}
	rest := turned.waitEnd(t)
	if len(rest) != 1 || !rest[0].Comment || rest[0].Data != "too many listeners" {
		t.Fatalf("messages before the end: %+v", rest)
	}
	// The retry hint carries jitter: between Retry and twice Retry.
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/events", nil)
	body := ts.do(t, req).body
	i := strings.Index(body, "retry: ")
	if i < 0 {
		t.Fatalf("no retry hint in %q", body)
	}
	ms, err := strconv.Atoi(strings.TrimSpace(body[i+len("retry: "):]))
	if err != nil || ms < 1000 || ms > 2000 {
		t.Fatalf("retry hint %q, want 1000..2000 ms", body[i:])
	}
	a.close()
	eventually(t, "slot freed", func() bool { return ts.Listeners() == 1 })
	ts.listen(t)
	if h := health(t, ts); h.TurnedAway != 2 {
		t.Errorf("listeners_turned_away: got %d, want 2", h.TurnedAway)
	}
}

// TestShutdownEndsStreamsCleanly: streams get what was published, a retry
// hint, and end on a complete frame; Shutdown returns within its timeout.
func TestShutdownEndsStreamsCleanly(t *testing.T) { bothStreamers(t, testShutdownEndsStreamsCleanly) }

func testShutdownEndsStreamsCleanly(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts := start(t, withStreamer(streamer, func(c *server.Config) { c.Heartbeat = time.Hour }))
	type raw struct {
		body io.Reader
	}
	streams := make([]raw, 0, 5)
	for range 5 {
		_, br, _ := rawStream(t, ts, 0)
		streams = append(streams, raw{body: httputil.NewChunkedReader(br)})
	}
	eventually(t, "listeners registered", func() bool { return ts.Listeners() == 5 })
	for n := range 10 {
		ts.mustPost(t, fmt.Sprintf(`{"n":%d}`, n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_ = ctx
	begin := time.Now()
	if err := ts.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("shutdown with 5 open streams took %v", time.Since(begin))
	for i, s := range streams {
		// The chunked reader returns io.EOF only at the terminating chunk:
		// the HTTP response itself ended properly.
		b, err := io.ReadAll(s.body)
		if err != nil {
			t.Fatalf("stream %d: %v after %q", i, err, b)
		}
		text := string(b)
		if !strings.HasSuffix(text, "\n\n") {
			t.Errorf("stream %d does not end on a complete frame: %q", i, text)
		}
		if !strings.Contains(text, `data: {"n":9,`) || !strings.Contains(text, "\nretry: ") {
			t.Errorf("stream %d lacks the last event or the retry hint: %q", i, text)
		}
	}
	if n := ts.Listeners(); n != 0 {
		t.Errorf("listeners after shutdown: %d", n)
	}
}

// streamGoroutines counts goroutines running a stream writer. (Counting all
// goroutines would not do: fasthttp keeps idle workers for a while, and
// other tests run in parallel.)
func streamGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), "fasthttp.NewStreamReader.func1")
}

// healthBody is the part of /health the tests read.
type healthBody struct {
	Message        string `json:"message"`
	Status         string `json:"status"`
	Version        string `json:"version"`
	Timestamp      int64  `json:"timestamp"`
	Listeners      int64  `json:"listeners"`
	EventsAccepted uint64 `json:"events_accepted"`
	EventsRejected uint64 `json:"events_rejected"`
	EventsMissed   uint64 `json:"events_missed"`
	ListenersTotal uint64 `json:"listeners_total"`
	ListenersCut   uint64 `json:"listeners_cut"`
	TurnedAway     uint64 `json:"listeners_turned_away"`
	Topics         int    `json:"topics"`

	Rejected     map[string]uint64 `json:"events_rejected_by_reason"`
	TurnedAwayBy map[string]uint64 `json:"listeners_turned_away_by_reason"`
	Ended        map[string]uint64 `json:"listeners_ended_by_reason"`
}

func health(t *testing.T, ts *testServer) healthBody {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/health", nil)
	r := ts.do(t, req)
	var h healthBody
	if r.status != http.StatusOK {
		t.Fatalf("/health: %d %s", r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &h); err != nil {
		t.Fatalf("/health body %q: %v", r.body, err)
	}
	return h
}

// TestBurstAfterQuietIsDelivered: the write deadline of a stream is pushed
// forward lazily, at flushes, so it can be in the past when a quiet stream
// wakes up. A burst bigger than the stream's buffer, which goes out in
// several writes, must still reach a listener that reads: it is not a
// listener that stopped reading.
func TestBurstAfterQuietIsDelivered(t *testing.T) { bothStreamers(t, testBurstAfterQuiet) }

func testBurstAfterQuiet(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	ts := start(t, withStreamer(streamer, func(c *server.Config) {
		c.WriteTimeout = timeout
		c.Heartbeat = time.Hour
		c.MaxBatchEvents = 2000
	}))
	l := ts.listen(t)
	ts.mustPost(t, `{"first":true}`)
	if m := l.nextEvent(t); !strings.Contains(m.Data, `"first":true`) {
		t.Fatalf("first event: %q", m.Data)
	}
	time.Sleep(2 * timeout) // the deadline set at the last flush passes
	const n = 2000          // about 300 KiB in one batch: many writes
	var body strings.Builder
	pad := strings.Repeat("x", 100)
	for i := range n {
		fmt.Fprintf(&body, "{\"i\":%d,\"pad\":%q}\n", i, pad)
	}
	if r := ts.postTo(t, "", ndjson, body.String()); r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	for i := range n {
		m := l.nextEvent(t)
		if want := fmt.Sprintf(`{"i":%d,`, i); !strings.HasPrefix(m.Data, want) {
			t.Fatalf("event %d: got %.40q (type %q)", i, m.Data, m.Type)
		}
	}
	if h := health(t, ts); h.ListenersCut != 0 || ts.Listeners() != 1 {
		t.Fatalf("listeners_cut %d, listeners %d: the reading listener was cut", h.ListenersCut, ts.Listeners())
	}
}

// TestServeAndShutdownInEitherOrder: a Serve called after Shutdown returns
// at once (closing its listener), and a Shutdown that starts while Serve is
// starting never leaves Serve running.
func TestServeAndShutdownInEitherOrder(t *testing.T) {
	t.Parallel()
	newServer := func() *server.Server {
		cfg := server.DefaultConfig()
		ring := fanout.New(fanout.Options{Size: 16})
		t.Cleanup(func() { _ = ring.Close() })
		srv, err := server.New(&cfg, server.Deps{Ring: ring})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	t.Run("shutdown first", func(t *testing.T) {
		srv := newServer()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		ln := listen()
		if err := srv.Serve(ln); err != nil {
			t.Fatalf("Serve after Shutdown: %v, want nil at once", err)
		}
		if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			t.Fatal("the listener given to Serve after Shutdown is still open")
		}
	})
	t.Run("concurrently", func(t *testing.T) {
		for range 50 {
			srv := newServer()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(listen()) }()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			_ = srv.Shutdown(ctx)
			cancel()
			select {
			case err := <-served:
				if err != nil {
					t.Fatalf("Serve: %v", err)
				}
			case <-time.After(waitFor):
				t.Fatal("Serve still running after Shutdown returned")
			}
		}
	})
}

// TestOneContinueForAListener: a listener's request that expects
// "100 Continue" gets it once, whatever the streamer (the stream was handed
// over with its request to a second server that answered it again).
func TestOneContinueForAListener(t *testing.T) { bothStreamers(t, testOneContinue) }

func testOneContinue(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts := start(t, withStreamer(streamer, nil))
	c := dial(t, ts)
	_, _ = io.WriteString(c, "GET /events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	var head strings.Builder
	for !strings.Contains(head.String(), ": connected") {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading: %v after %q", err, head.String())
		}
		head.WriteString(line)
	}
	if n := strings.Count(head.String(), "100 Continue"); n > 1 {
		t.Fatalf("%d \"100 Continue\" answers:\n%s", n, head.String())
	}
	if !strings.Contains(head.String(), "200 OK") {
		t.Fatalf("no stream:\n%s", head.String())
	}
}

package server_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// These tests reproduce, through real sockets, the defects a review of the
// service found when trying it as an attacker would, and check that each is
// fixed.

// dial opens a raw TCP connection to ts, closed when the test ends.
func dial(tb testing.TB, ts *testServer) *net.TCPConn {
	tb.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitFor))
	return c.(*net.TCPConn)
}

// TestShutdownAnswersOpenConnections: producers posting on keep-alive
// connections while the service shuts down get an answer to every request
// (200, or 503 with "Connection: close"), never a reset or an EOF instead.
func TestShutdownAnswersOpenConnections(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	const producers = 16
	type result struct {
		ok, refused int
		err         error
	}
	results := make(chan result, producers)
	var started sync.WaitGroup
	started.Add(producers)
	for range producers {
		c := dial(t, ts)
		go func() {
			var r result
			br := bufio.NewReader(c)
			for i := 0; ; i++ {
				if i == 1 {
					started.Done()
				}
				body := `{"a":1}`
				if _, err := fmt.Fprintf(c, "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
					r.err = fmt.Errorf("writing request %d: %w", i, err)
					break
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					r.err = fmt.Errorf("request %d got no answer: %w", i, err)
					break
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					r.ok++
				case http.StatusServiceUnavailable:
					r.refused++
				default:
					r.err = fmt.Errorf("request %d: status %d", i, resp.StatusCode)
				}
				if resp.Close || r.err != nil {
					break
				}
			}
			if r.ok == 0 {
				started.Done()
			}
			results <- r
		}()
	}
	started.Wait()
	if err := ts.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for range producers {
		r := <-results
		if r.err != nil {
			t.Errorf("producer: %v (after %d accepted, %d refused)", r.err, r.ok, r.refused)
		}
		if r.refused != 1 {
			t.Errorf("producer: %d answers 503, want exactly 1 (with Connection: close)", r.refused)
		}
	}
}

// TestStuckListenerDoesNotHoldShutdown: a listener whose socket is full does
// not hold a shutdown: it is cut at the end of the drain grace, while a
// healthy listener gets every event, a retry hint, and the end of its stream.
func TestStuckListenerDoesNotHoldShutdown(t *testing.T) {
	t.Parallel()
	for _, streamer := range []server.Streamer{server.StreamWriter, server.StreamHijack} {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) {
				c.Streamer = streamer
				c.WriteTimeout = time.Hour // only the shutdown can cut it
				c.Heartbeat = time.Hour
			})
			stuck, _, _ := rawStream(t, ts, 4096)
			defer stuck.Close()
			_, br, _ := rawStream(t, ts, 0)
			healthy := httputil.NewChunkedReader(br)
			eventually(t, "listeners registered", func() bool { return ts.Listeners() == 2 })
			pad := strings.Repeat("x", 2<<10)
			for n := range 200 { // 400 KiB: the stuck socket's buffers (send buffer capped) fill
				ts.mustPost(t, fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
			}
			got := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(healthy)
				got <- string(b)
			}()
			begin := time.Now()
			if err := ts.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if d := time.Since(begin); d > 3*time.Second {
				t.Errorf("shutdown with a stuck listener took %v, want under 3s", d)
			}
			text := <-got
			if !strings.Contains(text, `data: {"n":199,`) || !strings.HasSuffix(text, "\n\n") {
				t.Fatalf("healthy stream lacks the last event or a complete end: ...%q", tail(text))
			}
			if i, j := strings.LastIndex(text, `"n":199`), strings.LastIndex(text, "\nretry: "); j < i {
				t.Fatalf("healthy stream has no retry hint after the last event: ...%q", tail(text))
			}
		})
	}
}

func tail(s string) string {
	if len(s) > 200 {
		return s[len(s)-200:]
	}
	return s
}

// TestHTTP10Listener: an HTTP/1.0 listener gets the stream without chunked
// encoding, one Connection header, and the end of the stream by the
// connection closing, after a retry hint.
func TestHTTP10Listener(t *testing.T) {
	t.Parallel()
	for _, streamer := range []server.Streamer{server.StreamWriter, server.StreamHijack} {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) { c.Streamer = streamer; c.Heartbeat = time.Hour })
			c := dial(t, ts)
			fmt.Fprint(c, "GET /events HTTP/1.0\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if len(resp.TransferEncoding) > 0 || !resp.Close {
				t.Fatalf("HTTP/1.0 head: transfer-encoding %v, close %v; want no chunking and Connection: close",
					resp.TransferEncoding, resp.Close)
			}
			eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
			ts.mustPost(t, `{"a":1}`)
			if err := ts.stop(); err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading to the close: %v", err)
			}
			text := string(body)
			event := strings.Index(text, `data: {"a":1,"user_ip":"127.0.0.1"}`+"\n\n")
			if !strings.HasPrefix(text, ": connected\nretry: ") || event < 0 ||
				!strings.Contains(text[event:], "\nretry: ") || !strings.HasSuffix(text, "\n\n") {
				t.Fatalf("HTTP/1.0 body: %q", text)
			}
			if strings.Contains(text, "\r\n") {
				t.Fatalf("chunk framing inside an HTTP/1.0 stream: %q", text)
			}
		})
	}
}

// TestLargeRequestHeads: a browser with a few KB of cookies gets its stream;
// a head over -max-header-bytes gets 431 with a JSON error, not a reset.
func TestLargeRequestHeads(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	cookies := func(n int) string { return "a=" + strings.Repeat("b", n) }

	l := ts.listen(t, "Cookie", cookies(8<<10))
	ts.mustPost(t, `{"a":1}`, "Cookie", cookies(8<<10))
	if m := l.nextEvent(t); m.Data != `{"a":1,"user_ip":"127.0.0.1"}` {
		t.Fatalf("event: %q", m.Data)
	}
	for _, tc := range []struct{ name, head string }{
		{"one large header", "GET /events HTTP/1.1\r\nHost: x\r\nCookie: " + cookies(20<<10) + "\r\n\r\n"},
		{"many headers", "GET /events HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: 0123456789abcdef\r\n", 1000) + "\r\n"},
		{"long URI", "GET /events?x=" + strings.Repeat("y", 20<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		c := dial(t, ts)
		_, _ = io.WriteString(c, tc.head)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(body), `"error":"request head larger than 16384 bytes"`) {
			t.Errorf("%s: %d %s, want 431 with a JSON error", tc.name, resp.StatusCode, body)
		}
	}
}

// TestResetIsGoneNotCut: listeners that reset their connection are counted
// as gone, not cut, and cause no warning.
func TestResetIsGoneNotCut(t *testing.T) {
	t.Parallel()
	h := &countingHandler{counts: map[string]int{}}
	ts := startLogged(t, func(c *server.Config) { c.Heartbeat = time.Hour }, h)
	const n = 50
	conns := make([]*net.TCPConn, n)
	for i := range conns {
		conns[i], _, _ = rawStream(t, ts, 0)
	}
	eventually(t, "listeners registered", func() bool { return ts.Listeners() == n })
	for _, c := range conns {
		_ = c.SetLinger(0) // close with a reset
		_ = c.Close()
	}
	eventually(t, "listeners released", func() bool { return ts.Listeners() == 0 })
	hb := health(t, ts)
	if hb.Ended["gone"] != n || hb.ListenersCut != 0 {
		t.Errorf("ended %v, listeners_cut %d; want %d gone and none cut", hb.Ended, hb.ListenersCut, n)
	}
	for line, count := range h.snapshot() {
		if strings.HasPrefix(line, "WARN") {
			t.Errorf("warning logged %d times: %s", count, line)
		}
	}
}

// TestExpectContinueRefusedFromTheHead: a POST that expects "100 Continue"
// and would be refused gets its refusal at once, without "100 Continue"
// (its body is never sent).
func TestExpectContinueRefusedFromTheHead(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.PublishTokens = []string{"tok"} })
	for _, tc := range []struct {
		name, headers string
		status        int
	}{
		{"too large", "Authorization: Bearer tok\r\nContent-Length: 10485760\r\n", http.StatusRequestEntityTooLarge},
		{"no token", "Content-Length: 100\r\n", http.StatusUnauthorized},
	} {
		c := dial(t, ts)
		fmt.Fprintf(c, "POST /api/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n%s\r\n", tc.headers)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.HasPrefix(string(body), `{"error":`) {
			t.Errorf("%s: %d %q, want %d with a JSON error (and no 100 Continue first)", tc.name, resp.StatusCode, body, tc.status)
		}
	}
	// A valid one is told to continue, and published.
	l := ts.listen(t)
	c := dial(t, ts)
	br := bufio.NewReader(c)
	fmt.Fprint(c, "POST /api/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nAuthorization: Bearer tok\r\nContent-Length: 7\r\n\r\n")
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 Continue") {
		t.Fatalf("valid expectation: %q %v", line, err)
	}
	_, _ = br.ReadString('\n')
	fmt.Fprint(c, `{"a":1}`)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("after 100 Continue: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after 100 Continue: %d", resp.StatusCode)
	}
	if m := l.nextEvent(t); m.Data != `{"a":1,"user_ip":"127.0.0.1"}` {
		t.Fatalf("event: %q", m.Data)
	}
}

// TestCredentialsBeforeBody: a POST without the token is refused as soon as
// its body starts, not after the whole announced body was read.
func TestCredentialsBeforeBody(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.PublishTokens = []string{"tok"}; c.MaxBody = 1 << 20 })
	c := dial(t, ts)
	fmt.Fprintf(c, "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{\"a\":", 1<<20)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer before the body was sent: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("got %d, want 401 with WWW-Authenticate", resp.StatusCode)
	}
}

// TestForbiddenOriginIsCounted: a POST refused for its origin counts among
// the rejected events, by reason.
func TestForbiddenOriginIsCounted(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.CORSOrigins = []string{"https://ok.example"} })
	r := ts.post(t, `{"a":1}`, "Origin", "https://evil.example")
	checkError(t, r, http.StatusForbidden, "origin not allowed")
	if hb := health(t, ts); hb.EventsRejected != 1 || hb.Rejected["forbidden"] != 1 {
		t.Fatalf("events_rejected %d by reason %v, want 1 forbidden", hb.EventsRejected, hb.Rejected)
	}
}

// TestMissedCountsAStuckListener: events_missed moves while a listener that
// stopped reading is behind the buffer, not only once a write fails.
func TestMissedCountsAStuckListener(t *testing.T) {
	t.Parallel()
	ts := startBuffered(t, 16, func(c *server.Config) { c.WriteTimeout = time.Hour; c.Heartbeat = time.Hour })
	stuck, _, _ := rawStream(t, ts, 4096)
	defer stuck.Close()
	eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
	pad := strings.Repeat("x", 32<<10)
	for n := range 300 { // 9.6 MiB: the stream blocks, the ring laps it
		ts.mustPost(t, fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
	}
	if hb := health(t, ts); hb.EventsMissed == 0 || hb.Listeners != 1 {
		t.Fatalf("events_missed %d with a listener hundreds of events behind (listeners %d)", hb.EventsMissed, hb.Listeners)
	}
}

// TestWriteDeadlineReleasesAnIdleStream: a listener that stops reading is
// released when its write deadline passes, even if no event or heartbeat is
// written after that.
func TestWriteDeadlineReleasesAnIdleStream(t *testing.T) {
	t.Parallel()
	for _, streamer := range []server.Streamer{server.StreamWriter, server.StreamHijack} {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			const timeout = 300 * time.Millisecond
			ts := start(t, func(c *server.Config) {
				c.Streamer = streamer
				c.WriteTimeout = timeout
				c.Heartbeat = time.Hour
			})
			stuck, _, _ := rawStream(t, ts, 4096)
			defer stuck.Close()
			eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
			pad := strings.Repeat("x", 32<<10)
			for n := range 100 {
				ts.mustPost(t, fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
			}
			begin := time.Now()
			eventually(t, "stuck listener released", func() bool { return ts.Listeners() == 0 })
			if d := time.Since(begin); d > timeout+2*time.Second {
				t.Errorf("released %v after the last event, want about the write timeout (%v)", d, timeout)
			}
			if hb := health(t, ts); hb.Ended["slow"] != 1 || hb.ListenersCut != 1 {
				t.Errorf("ended %v, cut %d; want 1 slow", hb.Ended, hb.ListenersCut)
			}
		})
	}
}

// TestListenerLimitPerAddress: over -max-listeners-per-ip, a listener gets
// 200 with a retry hint and the end of the stream; a slot freed is reused.
func TestListenerLimitPerAddress(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.MaxListenersPerIP = 2 })
	a, b := ts.listen(t), ts.listen(t)
	l := ts.connect(t)
	if m := l.next(t); !m.Comment || m.Data != "too many listeners from this address" {
		t.Fatalf("third listener: %+v", m)
	}
	l.waitEnd(t)
	a.close()
	eventually(t, "slot freed", func() bool { return ts.Listeners() == 1 })
	c := ts.listen(t)
	ts.mustPost(t, `{"a":1}`)
	for _, l := range []*listener{b, c} {
		if m := l.nextEvent(t); m.Data != `{"a":1,"user_ip":"127.0.0.1"}` {
			t.Fatalf("event: %q", m.Data)
		}
	}
	if hb := health(t, ts); hb.TurnedAwayBy["ip_limit"] != 1 {
		t.Errorf("turned away by reason: %v, want 1 ip_limit", hb.TurnedAwayBy)
	}
}

// TestListenToken: with -listen-token, a listener needs a token, as a bearer
// token, a token query parameter or a dispatcher_token cookie; tokens are
// rotated by listing several.
func TestListenToken(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) {
		c.ListenTokens = []string{"old", "new"}
		c.PublishTokens = []string{"pub1", "pub2"}
	})
	for _, tc := range []struct {
		name    string
		path    string
		headers []string
		ok      bool
	}{
		{"none", "/events", nil, false},
		{"wrong bearer", "/events", []string{"Authorization", "Bearer nope"}, false},
		{"bearer", "/events", []string{"Authorization", "Bearer new"}, true},
		{"query", "/events?token=old", nil, true},
		{"wrong query", "/events?token=oldx", nil, false},
		{"cookie", "/events", []string{"Cookie", "x=1; dispatcher_token=new"}, true},
		{"publish token is not a listen token", "/events", []string{"Authorization", "Bearer pub1"}, false},
	} {
		req, _ := http.NewRequest(http.MethodGet, ts.url+tc.path, nil)
		for i := 0; i+1 < len(tc.headers); i += 2 {
			req.Header.Set(tc.headers[i], tc.headers[i+1])
		}
		if !tc.ok {
			checkError(t, ts.do(t, req), http.StatusUnauthorized, "listen token")
			continue
		}
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || line != ": connected\n" {
			t.Errorf("%s: %d %q, want the stream", tc.name, resp.StatusCode, line)
		}
	}
	for _, tok := range []string{"pub1", "pub2"} {
		ts.mustPost(t, `{"a":1}`, "Authorization", "Bearer "+tok)
	}
	checkError(t, ts.post(t, `{"a":1}`, "Authorization", "Bearer old"), http.StatusUnauthorized, "publish token")
}

// TestSlowClientCannotHoldAConnection: a client that sends a request head and
// never finishes it is answered 408 and disconnected after -header-timeout,
// while a stream open far longer is never cut by that timeout.
func TestSlowClientCannotHoldAConnection(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	ts := start(t, func(c *server.Config) { c.HeaderTimeout = timeout; c.Heartbeat = 100 * time.Millisecond })
	l := ts.listen(t)
	slow := dial(t, ts)
	_, _ = io.WriteString(slow, "POST /api/events HTTP/1.1\r\nHost: x\r\n")
	begin := time.Now()
	b, _ := io.ReadAll(slow)
	if d := time.Since(begin); d > timeout+2*time.Second {
		t.Errorf("slow head held the connection %v, want about %v", d, timeout)
	}
	if !strings.Contains(string(b), "408") {
		t.Errorf("slow head answered %q, want 408", b)
	}
	time.Sleep(3 * timeout) // the stream lives on past the header timeout
	for range 3 {
		if m := l.next(t); !m.Comment || m.Data != "ping" {
			t.Fatalf("stream after the header timeout: %+v", m)
		}
	}
}

// TestBodyMemoryFollowsWhatWasSent: connections announcing large bodies and
// sending one byte cost the server about what they sent, not what they
// announced.
func TestBodyMemoryFollowsWhatWasSent(t *testing.T) {
	if testing.Short() {
		t.Skip("opens hundreds of connections")
	}
	const (
		conns     = 300
		announced = 1 << 20
	)
	ts := start(t, func(c *server.Config) { c.MaxBody = announced; c.HeaderTimeout = time.Minute })
	before := heapInUse()
	cs := make([]net.Conn, conns)
	defer func() {
		for _, c := range cs {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range cs {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{", announced)
		cs[i] = c
	}
	// Every connection is now blocked in the middle of its body.
	time.Sleep(500 * time.Millisecond)
	grew := int64(heapInUse()) - int64(before)
	perConn := grew / conns
	t.Logf("heap grew %d KiB for %d connections announcing %d KiB each: %d KiB each",
		grew>>10, conns, announced>>10, perConn>>10)
	// The read buffer for the request head (16 KiB), the body buffer as
	// sent (4 KiB to start), fasthttp's request state: far from 1 MiB.
	if perConn > 64<<10 {
		t.Errorf("heap grew %d KiB per connection, want well under the %d KiB announced", perConn>>10, announced>>10)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestBadInput sends hostile and malformed requests and checks, for each,
// the answer, that the service stays up, and that a canary listener loses
// none of the events posted in between.
func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.HeaderTimeout = 500 * time.Millisecond })
	canary := ts.listen(t)
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	tests := []struct {
		name    string
		request string
		status  int // 0: the connection is closed without an answer
	}{
		{"Content-Length and Transfer-Encoding", "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n", http.StatusBadRequest},
		{"two Content-Lengths", "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n{\"a\":1} ", http.StatusBadRequest},
		{"huge header", "POST /api/events HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\nContent-Length: 2\r\n\r\n{}", http.StatusRequestHeaderFieldsTooLarge},
		{"chunked body that never ends", "POST /api/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n", http.StatusRequestTimeout},
		// Not a line ending here: the head never ends, and times out.
		{"bare LF", "POST /api/events HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}", http.StatusRequestTimeout},
		{"deep nesting", fmt.Sprintf("POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(deep), deep), http.StatusBadRequest},
		{"invalid UTF-8", "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\":\"\xff\xfe\"}", http.StatusBadRequest},
		{"NUL in the body", "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\":\"\x00\"} ", http.StatusBadRequest},
		{"NUL in a header", "POST /api/events HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}", http.StatusBadRequest},
		{"garbage request line", "HELLO\r\n\r\n", http.StatusBadRequest},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http.StatusBadRequest},
		{"negative Content-Length", "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}", http.StatusBadRequest},
		{"Transfer-Encoding identity", "POST /api/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 7\r\n\r\n{\"a\":1}", http.StatusBadRequest},
		{"Transfer-Encoding gzip, chunked", "POST /api/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n", http.StatusBadRequest},
		{"two Transfer-Encodings", "POST /api/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n", http.StatusBadRequest},
		{"two event parameters", "POST /api/events?event=a&event=b HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}", http.StatusBadRequest},
		{"two topic parameters", "POST /api/events?topic=a&topic=b HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}", http.StatusBadRequest},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts)
			_, _ = io.WriteString(c, tc.request)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				defer resp.Body.Close()
			}
			switch {
			case err != nil && tc.status != 0:
				t.Fatalf("no answer (%v), want %d", err, tc.status)
			case err == nil && resp.StatusCode != tc.status:
				body, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			case err == nil && tc.status != http.StatusOK:
				if body, _ := io.ReadAll(resp.Body); !strings.HasPrefix(string(body), `{"error":`) {
					t.Errorf("body %q, want a JSON error", body)
				}
			}
			// The service is up, and the canary loses nothing.
			ts.mustPost(t, fmt.Sprintf(`{"canary":%d}`, i))
			want := fmt.Sprintf(`{"canary":%d,"user_ip":"127.0.0.1"}`, i)
			for {
				m := canary.nextEvent(t)
				if !strings.HasPrefix(m.Data, `{"canary":`) {
					t.Errorf("a bad request published %q", m.Data)
					continue
				}
				if m.Data != want {
					t.Fatalf("canary got %q, want %q", m.Data, want)
				}
				break
			}
		})
	}
}

// TestTruncatedBodyIsNeverPublished: a body that ends before its
// Content-Length (the client closes its side, or resets), or a chunked body
// without its last chunk, is answered 400 (when the client can still read)
// and publishes nothing, for a single event and a batch.
func TestTruncatedBodyIsNeverPublished(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	l := ts.listen(t)
	for _, tc := range []struct {
		name, head, body string
		reset            bool
	}{
		{"single, closed", "Content-Type: application/json\r\nContent-Length: 100\r\n", `{"a":1}`, false},
		{"batch, closed", "Content-Type: application/x-ndjson\r\nContent-Length: 5000\r\n", "{\"a\":1}\n{\"b\":2}\n", false},
		{"batch, reset", "Content-Type: application/x-ndjson\r\nContent-Length: 5000\r\n", "{\"a\":1}\n{\"b\":2}\n", true},
		{"chunked batch, closed", "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n", "10\r\n{\"a\":1}\n{\"b\":2}\n\r\n", false},
	} {
		c := dial(t, ts)
		if _, err := fmt.Fprintf(c, "POST /api/events HTTP/1.1\r\nHost: x\r\n%s\r\n%s", tc.head, tc.body); err != nil {
			t.Fatal(err)
		}
		if tc.reset {
			_ = c.SetLinger(0)
			_ = c.Close()
			continue
		}
		_ = c.CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "nothing was published") {
			t.Errorf("%s: %d %s, want 400 saying nothing was published", tc.name, resp.StatusCode, body)
		}
	}
	// A complete event after them is the first the listener gets.
	ts.mustPost(t, `{"after":true}`)
	if m := l.nextEvent(t); !strings.Contains(m.Data, `"after":true`) {
		t.Fatalf("the listener got %q first: a truncated body was published", m.Data)
	}
	eventually(t, "the reset request counted", func() bool { return health(t, ts).EventsRejected == 4 })
	if h := health(t, ts); h.EventsAccepted != 1 {
		t.Fatalf("events_accepted %d, want 1", h.EventsAccepted)
	}
}

// TestOneConnectionHeader: every answer, streams, refusals and listeners
// turned away included, carries at most one Connection header, whatever
// the streamer.
func TestOneConnectionHeader(t *testing.T) { bothStreamers(t, testOneConnectionHeader) }

func testOneConnectionHeader(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts := start(t, withStreamer(streamer, func(c *server.Config) {
		c.MaxListeners = 1
		c.PublishTokens = []string{"p"}
	}))
	first, _, head := rawGet(t, ts, "/events", 0)
	defer first.Close()
	heads := map[string]string{"stream": head}
	for name, req := range map[string]string{ //nolint:gosec // G101: requests without a credential
		"turned away":   "GET /events HTTP/1.1\r\nHost: x\r\n\r\n",
		"bad topic":     "GET /events?topic=a..b HTTP/1.1\r\nHost: x\r\n\r\n",
		"no token":      "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"too large":     "POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer p\r\nContent-Length: 999999\r\n\r\n",
		"HTTP/1.0 turn": "GET /events HTTP/1.0\r\n\r\n",
	} {
		c := dial(t, ts)
		_, _ = io.WriteString(c, req)
		br := bufio.NewReader(c)
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: reading the head: %v", name, err)
			}
			b.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		heads[name] = b.String()
	}
	for name, h := range heads {
		if n := strings.Count(strings.ToLower(h), "\r\nconnection:"); n > 1 {
			t.Errorf("%s: %d Connection headers:\n%s", name, n, h)
		}
	}
}

// TestListenerLimitCountsTheClient: behind a trusted proxy, the per-address
// limit counts each client (its X-Forwarded-For entry, as user_ip), not the
// proxy: clients behind one proxy do not share the limit, and one client
// cannot escape it by changing what it writes to the left of the proxy's
// entry.
func TestListenerLimitCountsTheClient(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.MaxListenersPerIP = 2 }) // loopback is a trusted proxy
	for _, client := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		ts.listen(t, "X-Forwarded-For", client)
	}
	ts.listen(t, "X-Forwarded-For", "203.0.113.9, 198.51.100.1")
	l := ts.connect(t, "X-Forwarded-For", "203.0.113.10, 198.51.100.1")
	if m := l.next(t); !m.Comment || m.Data != "too many listeners from this address" {
		t.Fatalf("a third listener of one client: %+v", m)
	}
	if got := ts.Listeners(); got != 4 {
		t.Fatalf("listeners %d, want 4", got)
	}
}

// TestCutListenerMissesAreCounted: a listener stuck (it stopped reading)
// while the buffer turns over, then cut, is counted for every event it
// lost: events_missed never goes down, is not 0 after the cut, and the cut's
// log line says how many it missed; for a listener to every topic and to a
// topic.
func TestCutListenerMissesAreCounted(t *testing.T) {
	t.Parallel()
	for _, query := range []string{"", "?topic=t"} {
		t.Run("query="+query, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			ts := startWith(t, func(c *server.Config) { c.WriteTimeout = 300 * time.Millisecond; c.Heartbeat = time.Hour },
				fanout.Options{Size: 16, Permanent: []string{server.DefaultTopic}},
				slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			stuck, _, _ := rawGet(t, ts, "/events"+query, 4096)
			defer stuck.Close()
			eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
			// Straight into the ring, so that it turns over many times before
			// the write timeout cuts the listener, however slow the machine.
			// 16 frames of 16 KiB, what the ring holds, are more than the
			// stuck socket's buffers: its write blocks.
			frame := []byte("data: {\"pad\":\"" + strings.Repeat("x", 16<<10) + "\"}\n\n")
			var last uint64
			for n := range 200 {
				if _, err := ts.ring.Publish("t", frame); err != nil {
					t.Fatal(err)
				}
				if n%20 == 0 {
					if m := ts.Stats().FramesMissed; m < last {
						t.Fatalf("events_missed went down: %d after %d", m, last)
					} else {
						last = m
					}
				}
			}
			eventually(t, "the stuck listener cut", func() bool { return ts.Listeners() == 0 })
			h := health(t, ts)
			if h.EventsMissed < last || h.EventsMissed == 0 || h.ListenersCut != 1 {
				t.Fatalf("after the cut: events_missed %d (before %d), cut %d", h.EventsMissed, last, h.ListenersCut)
			}
			cut := regexp.MustCompile(`msg="listener cut".* missed=(\d+)`).FindStringSubmatch(logs.String())
			if len(cut) < 2 || cut[1] == "0" {
				t.Fatalf("the cut's log line: %v in\n%s", cut, logs.String())
			}
		})
	}
}

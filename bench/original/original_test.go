package original

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smallBufListener gives every accepted connection a small send buffer, so
// that a listener that does not read blocks the server's writes after a few
// KiB instead of after the megabytes that buffer autotuning could absorb.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(8 << 10)
		}
	}
	return c, err
}

// start runs the server in-process on 127.0.0.1:0.
func start(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	s := New()
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Listener = smallBufListener{ts.Listener}
	ts.Start()
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return s, ts
}

// listener is a raw GET /events connection: the original sends no byte, not
// even the response head, before the first event, so the response is only
// read once an event was posted.
type listener struct {
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

func listen(t *testing.T, ts *httptest.Server) *listener {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return &listener{conn: conn, br: bufio.NewReader(conn)}
}

// next reads the next SSE block (without its blank line), reading the
// response head first if needed.
func (l *listener) next(t *testing.T) string {
	t.Helper()
	_ = l.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if l.resp == nil {
		resp, err := http.ReadResponse(l.br, nil)
		if err != nil {
			t.Fatalf("response head: %v", err)
		}
		t.Cleanup(func() {
			l.conn.Close() // first: closing the body reads it to its end
			resp.Body.Close()
		})
		l.resp = resp
		l.br = bufio.NewReader(resp.Body)
	}
	var b strings.Builder
	for {
		line, err := l.br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, b.String())
		}
		if line == "\n" {
			return b.String()
		}
		b.WriteString(line)
	}
}

func post(t *testing.T, ts *httptest.Server, body string) int {
	t.Helper()
	code, err := tryPost(ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func tryPost(ts *httptest.Server, body string) (int, error) {
	resp, err := ts.Client().Post(ts.URL+"/api/events", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusOK && len(b) != 0 {
		return 0, errors.New("200 with a body: " + string(b))
	}
	return resp.StatusCode, nil
}

func waitListeners(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Listeners() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners, want %d", s.Listeners(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestEventReachesListenersReencoded(t *testing.T) {
	s, ts := start(t)
	l1, l2 := listen(t, ts), listen(t, ts)
	waitListeners(t, s, 2)

	// Nothing at all is sent before the first event: not even the head.
	_ = l1.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := l1.br.Peek(1); err == nil {
		t.Fatalf("received %q before any event", n)
	}

	if code := post(t, ts, `{"z": 1, "b": {"y": true, "x": null}, "a": "x"}`); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	want := `data: {"a":"x","b":{"x":null,"y":true},"user_ip":"127.0.0.1","z":1}` + "\n"
	for _, l := range []*listener{l1, l2} {
		if got := l.next(t); got != want {
			t.Fatalf("frame %q, want %q", got, want)
		}
		h := l.resp.Header
		if l.resp.StatusCode != 200 || h.Get("Content-Type") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" ||
			h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Connection") != "keep-alive" {
			t.Fatalf("response %s %v", l.resp.Status, h)
		}
		if te := l.resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
			t.Fatalf("transfer encoding %v", te)
		}
	}
}

func TestBigIntegerIsRounded(t *testing.T) {
	s, ts := start(t)
	l := listen(t, ts)
	waitListeners(t, s, 1)
	if code := post(t, ts, `{"seq":12345678901234567891,"ts":1764172800123456789}`); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	// float64 keeps 53 bits: both integers come out rounded.
	want := `data: {"seq":12345678901234567000,"ts":1764172800123456800,"user_ip":"127.0.0.1"}` + "\n"
	if got := l.next(t); got != want {
		t.Fatalf("frame %q, want %q", got, want)
	}
}

func TestPostErrors(t *testing.T) {
	_, ts := start(t)
	for body, want := range map[string]int{
		`{"a":1}`: 200,
		`null`:    400, // the original panicked
		`[1,2]`:   400,
		`"x"`:     400,
		`{"a":`:   400,
		``:        400,
	} {
		if got := post(t, ts, body); got != want {
			t.Errorf("POST %q: %d, want %d", body, got, want)
		}
	}
	// No size limit: a 2 MiB body is accepted.
	if got := post(t, ts, `{"pad":"`+strings.Repeat("x", 2<<20)+`"}`); got != 200 {
		t.Errorf("2 MiB body: %d", got)
	}
	resp, err := ts.Client().Get(ts.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /api/events: %d", resp.StatusCode)
	}
}

func TestHealth(t *testing.T) {
	_, ts := start(t)
	before := time.Now().UnixMilli()
	resp, err := ts.Client().Get(ts.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || h["message"] != "PONG" {
		t.Fatalf("health %s %v", resp.Status, h)
	}
	if ts, ok := h["timestamp"].(float64); !ok || int64(ts) < before || int64(ts) > time.Now().UnixMilli() {
		t.Fatalf("timestamp %v", h["timestamp"])
	}
	for _, k := range []string{"alloc", "total_alloc", "sys", "num_gc", "live_objects", "num_goroutines", "pause_total_ns"} {
		if _, ok := h[k].(string); !ok {
			t.Errorf("%s: %v", k, h[k])
		}
	}
	if !strings.HasSuffix(h["alloc"].(string), " MiB") {
		t.Errorf("alloc %q", h["alloc"])
	}
}

// TestStuckListenerBlocksEveryPost reproduces the original's main fault: a
// listener that stops reading blocks the broadcast, hence every POST, until
// it goes away.
func TestStuckListenerBlocksEveryPost(t *testing.T) {
	s, ts := start(t)
	healthy := listen(t, ts)
	stuck := listen(t, ts)
	if tc, ok := stuck.conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	waitListeners(t, s, 2)

	// One event far larger than the socket buffers: it is handed to both
	// listeners, so this POST completes, but the stuck listener's handler
	// stays blocked writing it.
	big := `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	if code := post(t, ts, big); code != 200 {
		t.Fatalf("first POST: %d", code)
	}
	if got := healthy.next(t); len(got) < 1<<20 {
		t.Fatalf("healthy listener got %d bytes", len(got))
	}

	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := tryPost(ts, `{"n":2}`)
		done <- result{code, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("POST completed (%d, %v) while a listener was stuck", r.code, r.err)
	case <-time.After(time.Second):
	}

	stuck.conn.Close()
	select {
	case r := <-done:
		if r.err != nil || r.code != 200 {
			t.Fatalf("POST after the stuck listener left: %d, %v", r.code, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("POST still blocked after the stuck listener disconnected")
	}
	if got := healthy.next(t); got != `data: {"n":2,"user_ip":"127.0.0.1"}`+"\n" {
		t.Fatalf("healthy listener got %q", got)
	}
	waitListeners(t, s, 1)
}

// TestRemoveDuringBlockedBroadcast checks the replica's deviation: a
// listener leaving while a broadcast holds the mutex, blocked on its
// channel, does not deadlock.
func TestRemoveDuringBlockedBroadcast(t *testing.T) {
	s := New()
	ch := make(chan []byte)
	s.add(ch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.broadcast([]byte(`{}`)) // nobody receives: blocks with the mutex held
	}()
	time.Sleep(20 * time.Millisecond)
	removed := make(chan struct{})
	go func() {
		defer close(removed)
		s.remove(ch)
	}()
	for _, c := range []chan struct{}{removed, done} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("remove and broadcast deadlocked")
		}
	}
	if n := s.Listeners(); n != 0 {
		t.Fatalf("%d listeners left", n)
	}
}

// TestListenerLeaves checks that a listener that disconnects before any
// event is removed.
func TestListenerLeaves(t *testing.T) {
	s, ts := start(t)
	l := listen(t, ts)
	waitListeners(t, s, 1)
	l.conn.Close()
	waitListeners(t, s, 0)
	if code := post(t, ts, `{}`); code != 200 {
		t.Fatalf("POST: %d", code)
	}
}

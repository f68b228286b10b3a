package baseline

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// subscribe opens GET /events and returns a reader positioned after the
// greeting.
func subscribe(t *testing.T, ts *httptest.Server) (*bufio.Reader, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	resp, err := ts.Client().Do(req) //nolint:bodyclose // closed by the returned function
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET /events: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", te)
	}
	br := bufio.NewReader(resp.Body)
	if got := readBlock(t, br); got != ": connected\n" {
		t.Fatalf("greeting %q", got)
	}
	return br, func() { cancel(); resp.Body.Close() }
}

// readBlock reads one SSE block (up to and including the blank line,
// which is not returned).
func readBlock(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
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
	resp, err := ts.Client().Post(ts.URL+"/api/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && len(b) != 0 {
		t.Errorf("200 with body %q", b)
	}
	return resp.StatusCode
}

func waitListeners(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Listeners() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners, want %d", s.Listeners(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPostIsFannedOutWithUserIP(t *testing.T) {
	s, ts := start(t, Options{})
	r1, close1 := subscribe(t, ts)
	defer close1()
	r2, close2 := subscribe(t, ts)
	defer close2()
	waitListeners(t, s, 2)

	if code := post(t, ts, `{"seq": 12345678901234567890, "b":"x"}`); code != 200 {
		t.Fatalf("POST: %d", code)
	}
	for _, r := range []*bufio.Reader{r1, r2} {
		block := readBlock(t, r)
		data, ok := strings.CutPrefix(block, "data: ")
		if !ok || strings.Count(block, "\n") != 1 {
			t.Fatalf("frame %q", block)
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		if m["user_ip"] != "127.0.0.1" || m["b"] != "x" || m["seq"].(json.Number).String() != "12345678901234567890" {
			t.Fatalf("event %v", m)
		}
	}
	if p, d := s.Stats(); p != 1 || d != 0 {
		t.Fatalf("stats %d %d", p, d)
	}
}

func TestPostValidation(t *testing.T) {
	_, ts := start(t, Options{MaxBody: 100})
	for body, want := range map[string]int{
		`{"a":1}`:        200,
		`[1,2]`:          400,
		`"x"`:            400,
		`null`:           400,
		`{"a":`:          400,
		`{"a":1}{"b":2}`: 400,
		`{"a":"` + strings.Repeat("x", 200) + `"}`: 413,
	} {
		if got := post(t, ts, body); got != want {
			t.Errorf("POST %.30q: %d, want %d", body, got, want)
		}
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

func TestDropWhenBufferFull(t *testing.T) {
	s := New(Options{Buffer: 2})
	ch, ok := s.subscribe()
	if !ok {
		t.Fatal("subscribe")
	}
	for i := 0; i < 5; i++ {
		s.broadcast([]byte("data: {}\n\n"))
	}
	if len(ch) != 2 {
		t.Fatalf("channel holds %d", len(ch))
	}
	if p, d := s.Stats(); p != 5 || d != 3 {
		t.Fatalf("published %d dropped %d", p, d)
	}
	s.unsubscribe(ch)
	if s.Listeners() != 0 {
		t.Fatal("unsubscribe")
	}
}

func TestMaxListenersAndHealth(t *testing.T) {
	s, ts := start(t, Options{MaxListeners: 1})
	_, closeSub := subscribe(t, ts)
	waitListeners(t, s, 1)
	resp, err := ts.Client().Get(ts.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second listener: %d", resp.StatusCode)
	}
	resp, err = ts.Client().Get(ts.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h["status"] != "ok" || h["listeners"].(float64) != 1 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("health %v", h)
	}
	closeSub()
	waitListeners(t, s, 0)
}

func TestHeartbeatAndClose(t *testing.T) {
	s, ts := start(t, Options{Heartbeat: 10 * time.Millisecond})
	r, closeSub := subscribe(t, ts)
	defer closeSub()
	if got := readBlock(t, r); got != ": ping\n" {
		t.Fatalf("heartbeat %q", got)
	}
	s.Close()
	s.Close() // idempotent
	// The stream ends once the server is closed.
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	waitListeners(t, s, 0)
}

// gatedWriter is a ResponseWriter that holds the first event frame's write
// until gate is closed, and counts frames and flushes.
type gatedWriter struct {
	header  http.Header
	gate    chan struct{} // closed to let event frames through
	blocked chan struct{} // closed once the first event frame waits at the gate
	once    sync.Once

	mu              sync.Mutex
	frames, flushes int
}

func (w *gatedWriter) Header() http.Header { return w.header }
func (w *gatedWriter) WriteHeader(int)     {}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), "data:") {
		w.once.Do(func() { close(w.blocked) })
		<-w.gate
		w.mu.Lock()
		w.frames++
		w.mu.Unlock()
	}
	return len(p), nil
}

func (w *gatedWriter) Flush() {
	w.mu.Lock()
	w.flushes++
	w.mu.Unlock()
}

func (w *gatedWriter) counts() (frames, flushes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames, w.flushes
}

// TestFlushPolicy checks when a stream flushes: events that wait in the
// channel while a write is under way go out with one flush (the default),
// or with one flush each (FlushEach). Both count the greeting's flush.
func TestFlushPolicy(t *testing.T) {
	const events = 50
	for _, tc := range []struct {
		name        string
		each        bool
		wantFlushes int
	}{
		{"drain before flush", false, 1 + 1},
		{"flush each frame", true, 1 + events},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Buffer: 256, FlushEach: tc.each})
			w := &gatedWriter{header: http.Header{}, gate: make(chan struct{}), blocked: make(chan struct{})}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				s.handleEvents(w, httptest.NewRequest(http.MethodGet, "/events", nil).WithContext(ctx))
			}()
			waitListeners(t, s, 1)
			s.broadcast([]byte("data: {\"n\":0}\n\n"))
			<-w.blocked // the stream is writing the first event
			for i := 1; i < events; i++ {
				s.broadcast([]byte("data: {}\n\n"))
			}
			close(w.gate)
			deadline := time.Now().Add(15 * time.Second)
			for {
				if frames, flushes := w.counts(); frames == events && flushes >= tc.wantFlushes {
					break
				}
				if time.Now().After(deadline) {
					frames, flushes := w.counts()
					t.Fatalf("%d frames, %d flushes after 15 s", frames, flushes)
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			<-done
			if frames, flushes := w.counts(); frames != events || flushes != tc.wantFlushes {
				t.Fatalf("%d frames in %d flushes, want %d in %d", frames, flushes, events, tc.wantFlushes)
			}
		})
	}
}

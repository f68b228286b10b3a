package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// TestWhileShuttingDown checks what producers and listeners get between the
// start of a shutdown and the end of the HTTP server: 503 for events, a
// retry hint and a closed stream for listeners. (Through the public API this
// window is too short to hit reliably.)
func TestWhileShuttingDown(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Retry = time.Second
	ring := fanout.New(fanout.Options{Size: 64})
	defer ring.Close()
	s, err := New(&cfg, Deps{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String()

	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	s.Drain()
	if status, body := do(http.MethodPost, "/api/events", `{"a":1}`); status != http.StatusServiceUnavailable ||
		body != `{"error":"shutting down"}` {
		t.Errorf("POST while shutting down: %d %s", status, body)
	}
	if status, body := do(http.MethodGet, "/events", ""); status != http.StatusOK ||
		!strings.HasPrefix(body, ": shutting down\nretry: ") || !strings.HasSuffix(body, "\n\n") {
		t.Errorf("GET /events while shutting down: %d %q", status, body)
	}
	if _, body := do(http.MethodGet, "/health", ""); !strings.Contains(body, `"status":"shutting_down"`) {
		t.Errorf("/health while shutting down: %s", body)
	}
}

// TestBuildDoesNotAllocate: building a payload and finishing its frame
// allocate nothing but the frame buffer the caller provides, even when a
// member is removed.
func TestBuildDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items)")
	}
	b, err := newEventBuilder("user_ip")
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("203.0.113.7")
	for _, body := range []string{
		`{"session": "abc", "position": 12345, "nested": {"a": [1, 2, 3]}}`,
		`{"user_ip": "x", "a": "b\"c"}`,
	} {
		h := frameHead{event: []byte("a-rather-long-event-name"), topic: "a.topic"}
		room := h.room()
		dst := newFrameBuf(room, b.payloadSize(len(body)))
		src := []byte(body)
		sp := newRunSpace()
		allocs := testing.AllocsPerRun(100, func() {
			p, err := b.appendPayload(dst[:room], src, ip)
			if err != nil {
				t.Fatal(err)
			}
			_ = finishFrame(p, room, sp, 1<<60, h)
		})
		if allocs != 0 {
			t.Errorf("build(%s): %v allocations, want 0", body, allocs)
		}
	}
}

// TestFrameSizeIsEnough: the capacity newFrameBuf and payloadSize promise
// holds the largest possible frame (the longest id, event name, topic and
// address), so building it never reallocates.
func TestFrameSizeIsEnough(t *testing.T) {
	b, _ := newEventBuilder("user_ip")
	ip := netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	body := []byte(`{}`)
	h := frameHead{event: bytes.Repeat([]byte("e"), maxNameLen), topic: strings.Repeat("t", maxNameLen)}
	if h.room() != maxFrameHead {
		t.Fatalf("room %d, want maxFrameHead %d", h.room(), maxFrameHead)
	}
	dst := newFrameBuf(h.room(), b.payloadSize(len(body)))
	p, err := b.appendPayload(dst, body, ip)
	if err != nil {
		t.Fatal(err)
	}
	sp := newStreamSpace(math.MaxInt64, 1)
	if len(sp.prefix) != maxSpacePrefix {
		t.Fatalf("longest space prefix %q: %d bytes, want maxSpacePrefix %d", sp.prefix, len(sp.prefix), maxSpacePrefix)
	}
	frame := finishFrame(p, h.room(), sp, math.MaxUint64, h)
	// No reallocation: the frame ends in dst's own array.
	if full := dst[:cap(dst)]; len(p)+len(frameEnd) > len(full) || &frame[len(frame)-1] != &full[len(p)+len(frameEnd)-1] {
		t.Fatalf("building reallocated: frame %q", frame)
	}
	want := "id: " + string(sp.prefix) + "18446744073709551615\nevent: " + strings.Repeat("e", maxNameLen) +
		"\ntopic: " + strings.Repeat("t", maxNameLen) +
		"\ndata: {\"user_ip\":\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\"}\n\n"
	if string(frame) != want {
		t.Fatalf("frame %q, want %q", frame, want)
	}
}

// TestPanicsAreRecovered: a panic in a handler is answered 500 and logged
// once with its stack; a panic in a stream ends that stream only; the
// service keeps serving.
func TestPanicsAreRecovered(t *testing.T) {
	for _, streamer := range []Streamer{StreamWriter, StreamHijack} {
		t.Run(string(streamer), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Streamer = streamer
			cfg.Heartbeat = time.Hour
			ring := fanout.New(fanout.Options{Size: 64})
			defer ring.Close()
			var logs lockedBuffer
			s, err := New(&cfg, Deps{Ring: ring, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			var panicking atomic.Bool
			panicking.Store(true)
			s.testHook = func(where string) {
				if panicking.Load() {
					panic("boom in " + where)
				}
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }()
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s.Drain()
				_ = ring.Close()
				_ = s.Shutdown(ctx)
				if err := <-served; err != nil {
					t.Errorf("Serve: %v", err)
				}
			}()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			url := "http://" + ln.Addr().String()

			resp, err := client.Post(url+"/api/events", "application/json", strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusInternalServerError || string(body) != `{"error":"internal error"}` {
				t.Errorf("POST with a panicking handler: %d %s", resp.StatusCode, body)
			}
			// A stream's connection is closed when the service ends the
			// stream: a client must not reuse it (see the README).
			streamReq, _ := http.NewRequest(http.MethodGet, url+"/events", nil)
			streamReq.Close = true
			stream, err := client.Do(streamReq)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(stream.Body) // the stream ends after its greeting
			stream.Body.Close()
			if !strings.HasPrefix(string(b), ": connected\n") {
				t.Errorf("panicking stream sent %q", b)
			}
			deadline := time.Now().Add(10 * time.Second)
			for s.Listeners() != 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			panicking.Store(false)
			resp, err = client.Post(url+"/api/events", "application/json", strings.NewReader(`{"a":2}`))
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("POST after the panics: %v %v", resp, err)
			}
			resp.Body.Close()
			text := logs.String()
			for _, want := range []string{`msg="handler panic" panic="boom in publish"`, `msg="stream panic" panic="boom in stream"`} {
				if strings.Count(text, want) != 1 {
					t.Errorf("log has %q %d times, want once:\n%s", want, strings.Count(text, want), text)
				}
			}
			if !strings.Contains(text, "stack=") || s.Stats().Panics != 2 || s.Listeners() != 0 {
				t.Errorf("stack logged %v, panics %d, listeners %d", strings.Contains(text, "stack="), s.Stats().Panics, s.Listeners())
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	buf bytes.Buffer
	mu  sync.Mutex
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFasthttpLogRedactsTokens: fasthttp's own log lines, which may quote a
// request's URI, never carry a listen token.
func TestFasthttpLogRedactsTokens(t *testing.T) {
	var logs lockedBuffer
	l := fasthttpLogger{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf("error when serving connection %q: %v", "GET /events?topic=a&token=s3cr3t&lastEventId=r1-2", "timeout")
	if text := logs.String(); strings.Contains(text, "s3cr3t") || !strings.Contains(text, "token=REDACTED") {
		t.Fatalf("log line: %s", text)
	}
}

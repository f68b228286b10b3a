package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httputil"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// countingHandler counts log records by level and message.
type countingHandler struct {
	counts map[string]int
	mu     sync.Mutex
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Level.String()+" "+r.Message]++
	return nil
}

func (h *countingHandler) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.counts))
	for k, v := range h.counts {
		out[k] = v
	}
	return out
}

// TestLogsNeverPerEvent: with debug logging on, events produce no log line;
// listeners log their connection and disconnection at debug level.
func TestLogsNeverPerEvent(t *testing.T) { bothStreamers(t, testLogsNeverPerEvent) }

func testLogsNeverPerEvent(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	h := &countingHandler{counts: map[string]int{}}
	ts := startLogged(t, withStreamer(streamer, func(c *server.Config) { c.Heartbeat = time.Hour }), h)
	l := ts.listen(t)
	for n := range 200 {
		ts.mustPost(t, fmt.Sprintf(`{"n":%d}`, n))
	}
	for range 200 {
		l.nextEvent(t)
	}
	l.close()
	eventually(t, "listener released", func() bool { return ts.Listeners() == 0 })
	want := map[string]int{"DEBUG listener connected": 1, "DEBUG listener disconnected": 1}
	eventually(t, "disconnection logged", func() bool { return h.snapshot()["DEBUG listener disconnected"] == 1 })
	got := h.snapshot()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q logged %d times, want %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && k[:5] != "INFO " {
			t.Errorf("unexpected log line %q (%d times)", k, v)
		}
	}
}

// TestLaggingListenerIsLoggedOnce: a listener that lags several times is
// reported at warn level once, not once per gap.
func TestLaggingListenerIsLoggedOnce(t *testing.T) { bothStreamers(t, testLaggingListenerIsLoggedOnce) }

func testLaggingListenerIsLoggedOnce(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	h := &countingHandler{counts: map[string]int{}}
	ts := startWith(t, withStreamer(streamer, func(c *server.Config) {
		c.Heartbeat = time.Hour
		c.WriteTimeout = time.Minute
	}), fanout.Options{Size: 4}, h)
	conn, br, _ := rawStream(t, ts, 4096)
	eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
	pad := strings.Repeat("x", 32<<10)
	events := sseclient.NewReader(httputil.NewChunkedReader(br))
	gaps, n := 0, 0
	for round := range 2 {
		// The listener does not read while 400 events (12.5 MiB) are
		// posted: its stream blocks and falls behind the ring.
		for range 400 {
			ts.mustPost(t, fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
			n++
		}
		_ = conn.SetReadDeadline(time.Now().Add(waitFor))
		for seen := 0; seen < 400; {
			m, err := events.Next()
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			switch {
			case m.Comment:
			case m.Type == "gap":
				var g struct{ Missed int }
				if err := json.Unmarshal([]byte(m.Data), &g); err != nil {
					t.Fatal(err)
				}
				gaps++
				seen += g.Missed
			default:
				seen++
			}
		}
	}
	if gaps < 2 {
		t.Fatalf("%d gap events: the listener did not lag twice", gaps)
	}
	if got := h.snapshot()["WARN listener lagged behind the buffer"]; got != 1 {
		t.Errorf("lag logged %d times for %d gaps, want once", got, gaps)
	}
}

// TestNoSecretInAnyLogLine: with tokens configured and debug logging, the
// requests that make fasthttp quote their heads in its own log lines (a
// malformed header line, say) leave no token, cookie or token parameter in
// any line.
func TestNoSecretInAnyLogLine(t *testing.T) {
	t.Parallel()
	const (
		publish = "PUBL1SHs3cret"
		listen  = "L1STENs3cret"
		jwt     = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlcw"
	)
	var logs syncBuffer
	ts := startLogged(t, func(c *server.Config) {
		c.PublishTokens = []string{publish}
		c.ListenTokens = []string{listen}
	}, slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, req := range []string{
		"POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + publish + "\r\nbad header line\r\n\r\n",
		"GET /events?a=1;token=" + listen + " HTTP/1.1\r\nHost: x\r\nCookie: dispatcher_token=" + listen + "\r\nno colon\r\n\r\n",
		"GET /events?token=" + listen + "&x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + jwt + "\r\n\x01bad\r\n\r\n",
		"GET /events?token=" + listen + " HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
	} {
		c := dial(t, ts)
		_, _ = c.Write([]byte(req))
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		_, _ = io.ReadAll(c) // the answer, then the close
		_ = c.Close()
	}
	eventually(t, "fasthttp's lines logged", func() bool { return strings.Contains(logs.String(), "fasthttp") })
	text := logs.String()
	for _, secret := range []string{publish, listen, jwt} {
		if strings.Contains(text, secret) {
			t.Errorf("a log line holds %q:\n%s", secret, text)
		}
	}
}

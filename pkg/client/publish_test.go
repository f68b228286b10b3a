package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// TestPublish: each kind of body reaches listeners as the service promises:
// raw JSON keeps the producer's bytes but whitespace, values are encoded
// with encoding/json, topic and name are the ones given.
func TestPublish(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, nil)
	c := newClient(t, svc.url)
	l := listen(t, svc.url, "")
	type start struct {
		Title string `json:"title"`
		Pos   int    `json:"pos"`
	}
	for _, tc := range []struct {
		name, topic, event string
		body               any
		wantType, wantData string
		wantTopic          string
	}{
		{"raw bytes", "", "", []byte(`{ "z": 1, "a": 12345678901234567890, "s": "caf\u00e9" }`),
			"message", `{"z":1,"a":12345678901234567890,"s":"caf\u00e9","user_ip":"127.0.0.1"}`, "default"},
		{"raw message on a topic, named", "video.main", "start", json.RawMessage(`{"b":2}`),
			"start", `{"b":2,"user_ip":"127.0.0.1"}`, "video.main"},
		{"struct", "player", "", start{Title: "<a&b>", Pos: 3},
			"message", `{"title":"<a&b>","pos":3,"user_ip":"127.0.0.1"}`, "player"},
		{"map", "", "pause", map[string]int{"n": 1},
			"pause", `{"n":1,"user_ip":"127.0.0.1"}`, "default"},
	} {
		if err := c.Publish(testContext(t), tc.topic, tc.event, tc.body, nil); err != nil {
			t.Fatalf("%s: Publish: %v", tc.name, err)
		}
		ev := l.next(t)
		if ev.Type != tc.wantType || ev.Topic != tc.wantTopic || string(ev.Data) != tc.wantData || ev.ID == "" || ev.Gap {
			t.Errorf("%s: got %s, want type %q topic %q data %s and an id", tc.name, got(client.Message{Event: ev}), tc.wantType, tc.wantTopic, tc.wantData)
		}
	}
}

// TestPublishBatch: a batch's events arrive in order, one after the other,
// each with the batch's topic and name; the count is the service's.
func TestPublishBatch(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, func(c *server.Config) { c.IPField = "" })
	c := newClient(t, svc.url)
	l := listen(t, svc.url, "topic=scores")
	events := []any{
		[]byte("{\n  \"n\": 0,\n  \"pretty\": true\n}"), // compacted to one line
		json.RawMessage(`{"n":1}`),
		map[string]any{"n": 2},
		struct {
			N int `json:"n"`
		}{3},
	}
	n, err := c.PublishBatch(testContext(t), "scores", "goal", events, &client.PublishOptions{IdempotencyKey: "k1"})
	if err != nil || n != len(events) {
		t.Fatalf("PublishBatch: got %d, %v; want %d, nil", n, err, len(events))
	}
	want := []string{`{"n":0,"pretty":true}`, `{"n":1}`, `{"n":2}`, `{"n":3}`}
	ids := make([]string, 0, len(want))
	for i, w := range want {
		ev := l.next(t)
		if ev.Type != "goal" || ev.Topic != "scores" || string(ev.Data) != w {
			t.Fatalf("event %d: got %s, want goal on scores: %s", i, got(client.Message{Event: ev}), w)
		}
		ids = append(ids, ev.ID)
	}
	for i := 1; i < len(ids); i++ {
		if idNumber(t, ids[i]) != idNumber(t, ids[i-1])+1 {
			t.Fatalf("ids %v are not consecutive", ids)
		}
	}

	accepted := svc.srv.Stats().EventsAccepted
	if n, err := c.PublishBatch(testContext(t), "", "", nil, nil); n != 0 || err != nil {
		t.Fatalf("empty batch: got %d, %v; want 0, nil", n, err)
	}
	if got := svc.srv.Stats().EventsAccepted; got != accepted {
		t.Fatalf("an empty batch was sent: %d events accepted, want %d", got, accepted)
	}
}

// TestPublishErrors: the service's refusals come back as *Error, with the
// sentinel a caller branches on; what cannot be encoded is not sent.
func TestPublishErrors(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, func(c *server.Config) {
		c.PublishTokens = []string{"secret"}
		c.MaxBody = 64
		c.MaxBatchEvents = 2
	})
	authorized := newClient(t, svc.url)
	authorized.PublishToken = "secret"
	anonymous := newClient(t, svc.url)
	wrong := newClient(t, svc.url)
	wrong.PublishToken = "guess"
	big := []byte(`{"s":"` + strings.Repeat("x", 100) + `"}`)
	publish := func(c *client.Client, topic string, body any) func() error {
		return func() error { return c.Publish(testContext(t), topic, "", body, nil) }
	}
	batch := func(c *client.Client, events ...any) func() error {
		return func() error {
			n, err := c.PublishBatch(testContext(t), "", "", events, nil)
			if n != 0 {
				t.Errorf("a refused batch reports %d events accepted", n)
			}
			return err
		}
	}
	for _, tc := range []struct {
		name     string
		call     func() error
		status   int
		sentinel error
		message  string
	}{
		{"no token", publish(anonymous, "", []byte(`{}`)), 401, client.ErrUnauthorized, "missing or invalid publish token"},
		{"wrong token", publish(wrong, "", []byte(`{}`)), 401, client.ErrUnauthorized, "missing or invalid publish token"},
		{"invalid JSON", publish(authorized, "", []byte(`{"a":`)), 400, client.ErrInvalid, "invalid JSON"},
		{"not an object", publish(authorized, "", []int{1}), 400, client.ErrInvalid, "object"},
		{"bad topic", publish(authorized, "two words", []byte(`{}`)), 400, client.ErrInvalid, `"topic"`},
		{"batch line", batch(authorized, []byte(`{}`), "text"), 400, client.ErrInvalid, "line 2"},
		{"too large", publish(authorized, "", big), 413, client.ErrTooLarge, "larger than 64 bytes"},
		{"batch line too large", batch(authorized, []byte(`{}`), big), 413, client.ErrTooLarge, "line 2"},
		{"batch of too many", batch(authorized, 1, 2, 3), 413, client.ErrTooLarge, "max-batch-events"},
	} {
		err := tc.call()
		var e *client.Error
		if !errors.As(err, &e) {
			t.Errorf("%s: got %v (%T), want an *Error", tc.name, err, err)
			continue
		}
		if e.StatusCode != tc.status || !strings.Contains(e.Message, tc.message) || !errors.Is(err, tc.sentinel) {
			t.Errorf("%s: got %d %q, want %d with %q, matching %v", tc.name, e.StatusCode, e.Message, tc.status, tc.message, tc.sentinel)
		}
		if client.IsRetryable(err) {
			t.Errorf("%s: %v is retryable", tc.name, err)
		}
		for _, other := range []error{client.ErrInvalid, client.ErrUnauthorized, client.ErrTooLarge, client.ErrConflict, client.ErrUnavailable} {
			if other != tc.sentinel && errors.Is(err, other) {
				t.Errorf("%s: %v matches %v too", tc.name, err, other)
			}
		}
	}
	if err := authorized.Publish(testContext(t), "", "", []byte(`{}`), nil); err != nil {
		t.Fatalf("with the token: %v", err)
	}

	// Refused before anything is sent.
	accepted := svc.srv.Stats().EventsAccepted
	for name, call := range map[string]func() error{
		"unencodable":        publish(authorized, "", func() {}),
		"invalid batch line": batch(authorized, []byte(`{}`), []byte(`{`)),
	} {
		err := call()
		var e *client.Error
		if err == nil || errors.As(err, &e) || client.IsRetryable(err) {
			t.Errorf("%s: got %v, want an encoding error, not retryable", name, err)
		}
	}
	if got := svc.srv.Stats().EventsAccepted; got != accepted {
		t.Errorf("events accepted went from %d to %d", accepted, got)
	}
	if rejected := svc.srv.Stats().RejectedTotal; rejected != 9 {
		t.Errorf("the service refused %d POSTs, want the 9 above", rejected)
	}
}

// TestPublishWhileDraining: a service shutting down answers 503 with
// Retry-After: the error says when to come back.
func TestPublishWhileDraining(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, nil)
	c := newClient(t, svc.url)
	if err := c.Publish(testContext(t), "", "", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	svc.srv.Drain()
	for name, call := range map[string]func() error{
		"single": func() error { return c.Publish(testContext(t), "", "", []byte(`{}`), nil) },
		"batch": func() error {
			_, err := c.PublishBatch(testContext(t), "", "", []any{1}, nil)
			return err
		},
	} {
		err := call()
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != 503 || e.RetryAfter != time.Second || e.Message != "shutting down" {
			t.Fatalf("%s: got %#v, want a 503 with Retry-After 1s", name, err)
		}
		if !errors.Is(err, client.ErrUnavailable) || !client.IsRetryable(err) {
			t.Fatalf("%s: %v is not ErrUnavailable and retryable", name, err)
		}
	}
}

// stub is an HTTP server that records the requests it gets and answers
// with answer: what the service cannot be made to do in a test (a 409, a
// batch stored part-way, a proxy's page), and a look at the requests.
type stub struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	method, path string
	query        url.Values
	header       http.Header
	body         string
}

func newStub(t *testing.T, answer http.HandlerFunc) *stub {
	t.Helper()
	s := &stub{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, recorded{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), string(body)})
		s.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// last returns the last request received.
func (s *stub) last(t *testing.T) recorded {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		t.Fatal("no request")
	}
	return s.requests[len(s.requests)-1]
}

// TestPublishRequest: the requests carry what the service reads: the
// topic and name as query parameters, the token, the content type, the
// idempotency key, the body, under BaseURL's path.
func TestPublishRequest(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") == "application/x-ndjson" {
			_, _ = io.WriteString(w, `{"accepted":2}`)
		}
	})
	c := newClient(t, s.URL+"/dispatcher/")
	c.PublishToken = "tok"
	opts := &client.PublishOptions{IdempotencyKey: "key-1"}
	if err := c.Publish(testContext(t), "video.main", "start", []byte(`{"a": 1}`), opts); err != nil {
		t.Fatal(err)
	}
	r := s.last(t)
	if r.method != http.MethodPost || r.path != "/dispatcher/api/events" || r.query.Get("topic") != "video.main" ||
		r.query.Get("event") != "start" || r.header.Get("Authorization") != "Bearer tok" ||
		r.header.Get("Content-Type") != "application/json" || r.header.Get("Idempotency-Key") != "key-1" ||
		r.body != `{"a": 1}` {
		t.Fatalf("Publish sent %+v", r)
	}
	n, err := c.PublishBatch(testContext(t), "", "", []any{[]byte(`{"a": 1}`), map[string]string{"b": "<"}}, nil)
	if err != nil || n != 2 {
		t.Fatalf("PublishBatch: %d, %v", n, err)
	}
	r = s.last(t)
	if len(r.query) != 0 || r.header.Get("Content-Type") != "application/x-ndjson" || r.header.Get("Idempotency-Key") != "" ||
		r.body != "{\"a\":1}\n{\"b\":\"<\"}\n" {
		t.Fatalf("PublishBatch sent %+v", r)
	}
}

// TestErrorAnswers: answers the service gives only with NATS, or that a
// proxy gives, map to *Error as documented.
func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	dated := time.Now()
	date := dated.Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name                string
		status              int
		header, body        string
		wantMessage         string
		wantAccepted        int
		wantRetryAfterAbout time.Duration
		sentinel            error
		retryable           bool
	}{
		{"conflict", 409, "", `{"error":"idempotency key reused with another body"}`, "idempotency key reused with another body", 0, 0, client.ErrConflict, false},
		{"batch stored part-way", 503, "2", `{"error":"nats: timeout","accepted":3}`, "nats: timeout", 3, 2 * time.Second, client.ErrUnavailable, true},
		{"proxy page", 502, "", "<html>\n<body>Bad Gateway</body></html>\n", "<html>\n<body>Bad Gateway</body></html>", 0, 0, client.ErrUnavailable, true},
		{"empty body", 504, "", "", "Gateway Timeout", 0, 0, client.ErrUnavailable, true},
		{"Retry-After date", 429, date, `{"error":"slow down"}`, "slow down", 0, 90 * time.Second, nil, true},
		{"forbidden origin", 403, "", `{"error":"origin not allowed"}`, "origin not allowed", 0, 0, client.ErrUnauthorized, false},
		{"head too large", 431, "", `{"error":"request header too large"}`, "request header too large", 0, 0, client.ErrTooLarge, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, func(w http.ResponseWriter, _ *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			n, err := newClient(t, s.URL).PublishBatch(testContext(t), "", "", []any{1, 2, 3, 4}, nil)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if e.StatusCode != tc.status || e.Message != tc.wantMessage || e.Accepted != tc.wantAccepted || n != tc.wantAccepted {
				t.Errorf("got %d %q accepted %d (returned %d), want %d %q accepted %d", e.StatusCode, e.Message, e.Accepted, n,
					tc.status, tc.wantMessage, tc.wantAccepted)
			}
			// A date is a date: the delay is shorter by the time since it
			// was written, and by up to a second of rounding.
			early := time.Since(dated) + time.Second
			if d := e.RetryAfter - tc.wantRetryAfterAbout; d < -early || d > 0 || tc.wantRetryAfterAbout == 0 && e.RetryAfter != 0 {
				t.Errorf("RetryAfter: got %v, want about %v", e.RetryAfter, tc.wantRetryAfterAbout)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("%v does not match %v", err, tc.sentinel)
			}
			if client.IsRetryable(err) != tc.retryable {
				t.Errorf("IsRetryable: got %v, want %v", !tc.retryable, tc.retryable)
			}
			if !strings.HasPrefix(err.Error(), "client: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
}

// TestPublishNetworkErrors: a request that failed on the way is
// retryable, unless the caller canceled it; a bad BaseURL is neither sent
// nor retryable.
func TestPublishNetworkErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()
	c := newClient(t, closed)
	if err := c.Publish(testContext(t), "", "", []byte(`{}`), nil); err == nil || !client.IsRetryable(err) {
		t.Errorf("refused connection: got %v, want a retryable error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Publish(ctx, "", "", []byte(`{}`), nil); !errors.Is(err, context.Canceled) || client.IsRetryable(err) {
		t.Errorf("canceled: got %v, want context.Canceled, not retryable", err)
	}
	for _, base := range []string{"", "localhost:8080", "ftp://host", "http://", "http://a b"} {
		c := client.Client{BaseURL: base}
		if err := c.Publish(testContext(t), "", "", []byte(`{}`), nil); err == nil || client.IsRetryable(err) {
			t.Errorf("BaseURL %q: got %v, want an error, not retryable", base, err)
		}
	}
}

// idNumber returns the number at the end of an event id ("<space>-<n>").
func idNumber(tb testing.TB, id string) uint64 {
	tb.Helper()
	i := strings.LastIndexByte(id, '-')
	var n uint64
	if i < 0 || i == len(id)-1 {
		tb.Fatalf("id %q: not <space>-<n>", id)
	}
	for _, c := range id[i+1:] {
		if c < '0' || c > '9' {
			tb.Fatalf("id %q: not <space>-<n>", id)
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	// Every response carries the header, errors included.
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/events", `{"a":1}`},
		{http.MethodPost, "/api/events", `nope`},
		{http.MethodGet, "/health", ""},
		{http.MethodDelete, "/api/events", ""},
		{http.MethodGet, "/nope", ""},
	} {
		req, _ := http.NewRequest(tc.method, ts.url+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Origin", "https://player.example")
		if got := ts.do(t, req).header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("%s %s: Access-Control-Allow-Origin %q, want *", tc.method, tc.path, got)
		}
	}
	l := ts.listen(t, "Origin", "https://player.example")
	if got := l.resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("GET /events: Access-Control-Allow-Origin %q", got)
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	for _, path := range []string{"/api/events", "/events"} {
		req, _ := http.NewRequest(http.MethodOptions, ts.url+path, nil)
		req.Header.Set("Origin", "https://player.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		r := ts.do(t, req)
		want := map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
			"Access-Control-Allow-Headers": "Content-Type, Authorization, Last-Event-ID",
			"Access-Control-Max-Age":       "86400",
		}
		if r.status != http.StatusNoContent {
			t.Errorf("OPTIONS %s: status %d, want 204", path, r.status)
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("OPTIONS %s: %s %q, want %q", path, k, got, v)
			}
		}
	}
}

func TestCORSAllowList(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) {
		c.CORSOrigins = []string{"https://player.example", "http://localhost:3000"}
	})
	l := ts.listen(t, "Origin", "http://localhost:3000")
	if got := l.resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("allowed origin on /events: %q", got)
	}
	allowed := ts.post(t, `{"a":1}`, "Origin", "https://player.example")
	if allowed.status != http.StatusOK || allowed.header.Get("Access-Control-Allow-Origin") != "https://player.example" ||
		allowed.header.Get("Vary") != "Origin" {
		t.Errorf("allowed origin: %d, headers %v", allowed.status, allowed.header)
	}
	denied := ts.post(t, `{"a":2}`, "Origin", "https://evil.example")
	checkError(t, denied, http.StatusForbidden, "origin not allowed")
	if got := denied.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("denied origin got Access-Control-Allow-Origin %q", got)
	}
	// A request without Origin (a back-end producer) is not a CORS request.
	if r := ts.post(t, `{"a":3}`); r.status != http.StatusOK {
		t.Errorf("request without Origin: %d %s", r.status, r.body)
	}
	for _, want := range []string{`{"a":1,`, `{"a":3,`} {
		if m := l.nextEvent(t); !strings.HasPrefix(m.Data, want) {
			t.Errorf("got %q, want %s...", m.Data, want)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	l := ts.listen(t)
	ts.mustPost(t, `{"a":1}`)
	ts.post(t, `bad`)
	l.nextEvent(t)
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/health", nil)
	r := ts.do(t, req)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// The original service's fields are all there.
	for _, field := range []string{`"message":"PONG"`, `"timestamp":`, `"alloc":"`, `"live_objects":"`, `"num_gc":"`,
		`"num_goroutines":"`, `"pause_total_ns":"`, `"sys":"`, `"total_alloc":"`, `"uptime_seconds":`} {
		if !strings.Contains(r.body, field) {
			t.Errorf("/health lacks %s: %s", field, r.body)
		}
	}
	h := health(t, ts)
	if h.Status != "ok" || h.Version != "dev" || h.Listeners != 1 || h.EventsAccepted != 1 ||
		h.EventsRejected != 1 || h.ListenersTotal != 1 || h.Timestamp == 0 {
		t.Errorf("/health: %+v", h)
	}
}

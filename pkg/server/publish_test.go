package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// checkError checks a JSON error response.
func checkError(t *testing.T, r response, status int, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status: got %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Errorf("body %q is not a JSON error: %v", r.body, err)
	}
	if !strings.Contains(body.Error, msgPart) {
		t.Errorf("error message: got %q, want it to mention %q", body.Error, msgPart)
	}
}

func TestPublishRejectsBadBodies(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	l := ts.listen(t)
	tests := []struct {
		name, body, msg string
	}{
		{"empty", "", "empty body"},
		{"whitespace only", " \n\t ", "empty body"},
		{"null", "null", "must be a JSON object"},
		{"array", "[1,2]", "must be a JSON object"},
		{"string", `"x"`, "must be a JSON object"},
		{"number", "42", "must be a JSON object"},
		{"invalid JSON", `{"a":}`, "invalid JSON"},
		{"unterminated", `{"a":1`, "invalid JSON"},
		{"single quotes", `{'a':1}`, "invalid JSON"},
		{"trailing comma", `{"a":1,}`, "invalid JSON"},
		{"leading zero", `{"a":01}`, "invalid JSON"},
		{"raw control character", "{\"a\":\"x\ty\"}", "invalid JSON"},
		{"invalid UTF-8", "{\"a\":\"\xff\xfe\"}", "invalid UTF-8"},
		{"lone surrogate escape", `{"a":"\ud800"}`, "invalid JSON"},
		{"trailing data", `{"a":1} {"b":2}`, "after top-level value"},
		{"trailing garbage", `{"a":1}x`, "after top-level value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, ts.post(t, tc.body), http.StatusBadRequest, tc.msg)
		})
	}
	// Nothing was broadcast: the next event the listener sees is this one.
	ts.mustPost(t, `{"sentinel":true}`)
	if m := l.nextEvent(t); m.Data != `{"sentinel":true,"user_ip":"127.0.0.1"}` {
		t.Fatalf("first event after bad bodies: %q", m.Data)
	}
}

// TestPublishCompactsWithoutReencoding checks, byte for byte, that listeners
// receive the producer's JSON minus insignificant whitespace, plus user_ip.
func TestPublishCompactsWithoutReencoding(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	l := ts.listen(t)
	tests := []struct{ name, body, want string }{
		{"seed example", `{"msg": "data", "timestamp": "1732640000"}`, `{"msg":"data","timestamp":"1732640000","user_ip":"127.0.0.1"}`},
		{"key order kept", `{ "z": 1, "a": 2, "m": 3 }`, `{"z":1,"a":2,"m":3,"user_ip":"127.0.0.1"}`},
		{"big integer kept", `{"n": 12345678901234567890}`, `{"n":12345678901234567890,"user_ip":"127.0.0.1"}`},
		{"number literals kept", `{"f": 1.0e+10, "g": -0.50, "h": 1E2}`, `{"f":1.0e+10,"g":-0.50,"h":1E2,"user_ip":"127.0.0.1"}`},
		{"escapes kept", `{"s": "caf\u00e9 \/ \"q\" \n <&>"}`, `{"s":"caf\u00e9 \/ \"q\" \n <&>","user_ip":"127.0.0.1"}`},
		{"raw UTF-8 kept", `{"s": "café ☕ 😀"}`, `{"s":"café ☕ 😀","user_ip":"127.0.0.1"}`},
		{"nested", "{\r\n  \"a\" : [ 1 , { \"b\" : null } ] ,\n\t\"c\":{ }\n}\n", `{"a":[1,{"b":null}],"c":{},"user_ip":"127.0.0.1"}`},
		{"empty object", `{}`, `{"user_ip":"127.0.0.1"}`},
		{"user_ip replaced, first", `{"user_ip": "1.1.1.1", "a": 1}`, `{"a":1,"user_ip":"127.0.0.1"}`},
		{"user_ip replaced, last", `{"a": 1, "user_ip": "1.1.1.1"}`, `{"a":1,"user_ip":"127.0.0.1"}`},
		{"user_ip replaced, only", `{"user_ip": {"x": [1]}}`, `{"user_ip":"127.0.0.1"}`},
		{"user_ip replaced, twice", `{"user_ip":1,"a":"user_ip","user_ip":2}`, `{"a":"user_ip","user_ip":"127.0.0.1"}`},
		{"user_ip escaped name replaced", `{"user\u005fip": "x", "b": 2}`, `{"b":2,"user_ip":"127.0.0.1"}`},
		{"nested user_ip kept", `{"d": {"user_ip": "keep"}}`, `{"d":{"user_ip":"keep"},"user_ip":"127.0.0.1"}`},
		{"duplicate names kept", `{"a":1,"a":2}`, `{"a":1,"a":2,"user_ip":"127.0.0.1"}`},
	}
	for _, tc := range tests {
		ts.mustPost(t, tc.body)
		if m := l.nextEvent(t); m.Data != tc.want || m.Type != "message" {
			t.Errorf("%s: got %s %q, want message %q", tc.name, m.Type, m.Data, tc.want)
		}
	}
}

// TestWireBytes checks the exact bytes of a stream on the wire, after the
// HTTP chunked framing is removed.
func TestWireBytes(t *testing.T) { bothStreamers(t, testWireBytes) }

func testWireBytes(t *testing.T, streamer server.Streamer) {
	t.Parallel()
	ts := start(t, withStreamer(streamer, func(c *server.Config) { c.Heartbeat = time.Hour }))
	conn, br, head := rawStream(t, ts, 0)
	for _, h := range []string{"HTTP/1.1 200 OK\r\n", "Content-Type: text/event-stream\r\n", "Cache-Control: no-cache\r\n",
		"Connection: keep-alive\r\n", "X-Accel-Buffering: no\r\n", "Access-Control-Allow-Origin: *\r\n", "Transfer-Encoding: chunked\r\n"} {
		if !strings.Contains(head, h) {
			t.Errorf("response head lacks %q:\n%s", h, head)
		}
	}
	eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
	ts.mustPost(t, `{ "a" : 1 }`)
	ts.mustPost(t, `{"b":[true, false]}`, "X-Test", "x")
	ts.mustPost(t, `{"c":null}`)
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events?event=play", strings.NewReader(`{"d":1}`))
	if r := ts.do(t, req); r.status != http.StatusOK {
		t.Fatalf("named event: %d %s", r.status, r.body)
	}
	want := regexp.MustCompile(`^: connected\nretry: [0-9]{4}\n\n` +
		`id: (r[0-9a-z]+-)1\ndata: \{"a":1,"user_ip":"127\.0\.0\.1"\}\n\n` +
		`id: (r[0-9a-z]+-)2\ndata: \{"b":\[true,false\],"user_ip":"127\.0\.0\.1"\}\n\n` +
		`id: (r[0-9a-z]+-)3\ndata: \{"c":null,"user_ip":"127\.0\.0\.1"\}\n\n` +
		`id: (r[0-9a-z]+-)4\nevent: play\ndata: \{"d":1,"user_ip":"127\.0\.0\.1"\}\n\n$`)
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	events := httputil.NewChunkedReader(br)
	var got []byte
	buf := make([]byte, 4096)
	for !want.Match(got) && len(got) < 4096 {
		n, err := events.Read(buf)
		if err != nil {
			t.Fatalf("reading stream: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
		if bytes.Count(got, []byte("\n\n")) >= 5 {
			break
		}
	}
	m := want.FindSubmatch(got)
	if m == nil {
		t.Fatalf("wire bytes:\ngot  %q\nwant %s", got, want)
	}
	for _, prefix := range m[2:] {
		if !bytes.Equal(prefix, m[1]) {
			t.Errorf("ids from different spaces: %q and %q", m[1], prefix)
		}
	}
	if len(m[1]) > 40-20 {
		t.Errorf("id prefix %q leaves too little room in 40 characters", m[1])
	}
}

func TestUserIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		configure func(*server.Config)
		headers   []string
		want      string
	}{
		{"peer", nil, nil, `{"a":1,"user_ip":"127.0.0.1"}`},
		{"forwarded from a trusted proxy", nil, []string{"X-Forwarded-For", "203.0.113.7"}, `{"a":1,"user_ip":"203.0.113.7"}`},
		// The client wrote the entries left of what the proxy appended: the
		// rightmost untrusted entry is the address the proxy saw.
		{"client-chosen entries not believed", nil, []string{"X-Forwarded-For", "6.6.6.6, 203.0.113.50"}, `{"a":1,"user_ip":"203.0.113.50"}`},
		{"private hop not trusted by default", nil, []string{"X-Forwarded-For", "203.0.113.7, 10.0.0.1"}, `{"a":1,"user_ip":"10.0.0.1"}`},
		{"chain of trusted proxies", func(c *server.Config) {
			c.TrustedProxies = append(server.DefaultTrustedProxies(), netip.MustParsePrefix("10.0.0.0/8"))
		}, []string{"X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.1"}, `{"a":1,"user_ip":"203.0.113.7"}`},
		{"forwarded IPv6 with port", nil, []string{"X-Forwarded-For", "[2001:db8::1]:443"}, `{"a":1,"user_ip":"2001:db8::1"}`},
		{"forwarded garbage ignored", nil, []string{"X-Forwarded-For", `"><script>`}, `{"a":1,"user_ip":"127.0.0.1"}`},
		{"garbage left of the client ignored", nil, []string{"X-Forwarded-For", `"><script>, 203.0.113.7`}, `{"a":1,"user_ip":"203.0.113.7"}`},
		{"untrusted peer's header ignored", func(c *server.Config) { c.TrustedProxies = nil },
			[]string{"X-Forwarded-For", "203.0.113.7"}, `{"a":1,"user_ip":"127.0.0.1"}`},
		{"custom field", func(c *server.Config) { c.IPField = "client" }, nil, `{"a":1,"client":"127.0.0.1"}`},
		{"enrichment off", func(c *server.Config) { c.IPField = "" }, nil, `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, tc.configure)
			l := ts.listen(t)
			ts.mustPost(t, `{"a":1}`, tc.headers...)
			if m := l.nextEvent(t); m.Data != tc.want {
				t.Errorf("got %q, want %q", m.Data, tc.want)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	ts := start(t, func(c *server.Config) { c.MaxBody = limit })
	l := ts.listen(t)
	fits := `{"p":"` + strings.Repeat("x", limit-8) + `"}`
	if len(fits) != limit {
		t.Fatalf("test body is %d bytes", len(fits))
	}
	ts.mustPost(t, fits)
	checkError(t, ts.post(t, fits+" "), http.StatusRequestEntityTooLarge, "larger than 1024 bytes")

	// A 10 MiB body, as the original service accepted: refused promptly,
	// with the connection closed rather than left hanging.
	big := `{"p":"` + strings.Repeat("x", 10<<20) + `"}`
	start := time.Now()
	checkError(t, ts.post(t, big), http.StatusRequestEntityTooLarge, "larger than")
	if d := time.Since(start); d > waitFor {
		t.Errorf("10 MiB body refused after %v", d)
	}

	// The same without Content-Length (chunked).
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	checkError(t, ts.do(t, req), http.StatusRequestEntityTooLarge, "larger than")

	// Only the body that fit was broadcast.
	if m := l.nextEvent(t); !strings.HasPrefix(m.Data, `{"p":"xxx`) || len(m.Data) != limit+len(`,"user_ip":"127.0.0.1"`) {
		t.Fatalf("first event: %d bytes", len(m.Data))
	}
	ts.mustPost(t, `{"after":1}`)
	if m := l.nextEvent(t); m.Data != `{"after":1,"user_ip":"127.0.0.1"}` {
		t.Fatalf("event after the refused bodies: %q", m.Data)
	}
}

// TestBodyLimitRawConnection checks what a client that does not wait for the
// answer sees: it announces 5 MiB and starts sending; the 413 arrives, before
// the body is read, then the server closes the connection.
func TestBodyLimitRawConnection(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.MaxBody = 1024 })
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitFor))
	fmt.Fprintf(conn, "POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{\"pad\":\"", 5<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Fatalf("got %d (close=%v), want 413 and the connection closed", resp.StatusCode, resp.Close)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, "/api/events", "POST"},
		{http.MethodPut, "/api/events", "POST"},
		{http.MethodDelete, "/api/events", "POST"},
		{http.MethodPost, "/events", "GET"},
		{http.MethodPost, "/health", "GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.url+tc.path, strings.NewReader("{}"))
			r := ts.do(t, req)
			checkError(t, r, http.StatusMethodNotAllowed, "method not allowed")
			if allow := r.header.Get("Allow"); !strings.Contains(allow, tc.allow) {
				t.Errorf("Allow: got %q, want it to list %s", allow, tc.allow)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/nope", nil)
	checkError(t, ts.do(t, req), http.StatusNotFound, "not found")
}

func TestPublishToken(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.PublishTokens = []string{"s3cret"} })
	l := ts.listen(t)
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"missing", nil, http.StatusUnauthorized},
		{"wrong", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"prefix of the token", []string{"Authorization", "Bearer s3cre"}, http.StatusUnauthorized},
		{"not bearer", []string{"Authorization", "Basic s3cret"}, http.StatusUnauthorized},
		{"right", []string{"Authorization", "Bearer s3cret"}, http.StatusOK},
		{"scheme in lower case", []string{"Authorization", "bearer s3cret"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.post(t, `{"t":"`+tc.name+`"}`, tc.headers...)
			if tc.status == http.StatusOK {
				if r.status != http.StatusOK {
					t.Fatalf("status %d, body %s", r.status, r.body)
				}
				return
			}
			checkError(t, r, tc.status, "publish token")
			if r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	for _, want := range []string{"right", "scheme in lower case"} {
		if m := l.nextEvent(t); !strings.Contains(m.Data, want) {
			t.Errorf("got %q, want the %q event", m.Data, want)
		}
	}
}

// TestReservedAndOversizedInBatches: "gap" cannot be posted as an event name
// (listeners must be able to trust it), and a batch line over -max-body is
// refused like a single event of that size.
func TestReservedAndOversizedInBatches(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.MaxBody = 64 })
	l := ts.listen(t)
	req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events?event=gap", strings.NewReader(`{"missed":0}`))
	checkError(t, ts.do(t, req), http.StatusBadRequest, `"gap" is reserved`)
	batch := "{\"a\":1}\n{\"p\":\"" + strings.Repeat("x", 100) + "\"}\n"
	checkError(t, ts.post(t, batch, "Content-Type", "application/x-ndjson"), http.StatusRequestEntityTooLarge, "line 2: larger than 64 bytes")
	ts.mustPost(t, `{"after":1}`)
	if m := l.nextEvent(t); m.Data != `{"after":1,"user_ip":"127.0.0.1"}` {
		t.Fatalf("published %q before the event after the refusals", m.Data)
	}
}

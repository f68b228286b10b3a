package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

const ndjson = "application/x-ndjson"

// checkAccepted checks a batch's success answer: 200, JSON {"accepted":n}.
func checkAccepted(tb testing.TB, r response, n int) {
	tb.Helper()
	if r.status != http.StatusOK {
		tb.Fatalf("batch: status %d, body %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("batch: Content-Type %q, want application/json", ct)
	}
	if want := fmt.Sprintf(`{"accepted":%d}`, n); r.body != want {
		tb.Fatalf("batch: body %s, want %s", r.body, want)
	}
}

// TestBatch: an NDJSON body is one event per line, each validated, compacted
// and enriched as a single POST's body is, published in line order with
// consecutive ids; blank and whitespace-only lines are skipped, CRLF line
// ends and a last line without one are accepted; the Content-Type's case
// and parameters do not matter.
func TestBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, contentType, body string
		want                    []string // the events' data
	}{
		{
			name: "three lines", contentType: ndjson,
			body: "{\"n\":1}\n{ \"n\" : 2 , \"s\":\"a\\u00e9\\n\" }\n{\"n\":3,\"big\":12345678901234567890}\n",
			want: []string{`{"n":1,"user_ip":"127.0.0.1"}`, `{"n":2,"s":"a\u00e9\n","user_ip":"127.0.0.1"}`,
				`{"n":3,"big":12345678901234567890,"user_ip":"127.0.0.1"}`},
		},
		{
			name: "blank lines, CRLF, no final line end", contentType: "Application/X-NDJSON; charset=utf-8",
			body: "\n\r\n  \t \r\n{\"n\":1}\r\n\r\n\n{\"n\":2}\n \n{\"n\":3}",
			want: []string{`{"n":1,"user_ip":"127.0.0.1"}`, `{"n":2,"user_ip":"127.0.0.1"}`, `{"n":3,"user_ip":"127.0.0.1"}`},
		},
		{
			name: "enrichment overrides a spoofed address", contentType: ndjson,
			body: "{\"user_ip\":\"6.6.6.6\",\"n\":1}\n{\"n\":2,\"user_ip\":\"6.6.6.6\"}\n{}\n",
			want: []string{`{"n":1,"user_ip":"127.0.0.1"}`, `{"n":2,"user_ip":"127.0.0.1"}`, `{"user_ip":"127.0.0.1"}`},
		},
		{
			name: "one line", contentType: ndjson, body: `{"only":true}`,
			want: []string{`{"only":true,"user_ip":"127.0.0.1"}`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
			s := ts.open(t, "")
			s.greeting(t)
			checkAccepted(t, ts.postTo(t, "", tc.contentType, tc.body), len(tc.want))
			var last uint64
			for i, want := range tc.want {
				b := s.nextEvent(t)
				if b.data != want || b.event != "" {
					t.Errorf("event %d: got %q, want data %s", i, b.raw, want)
				}
				_, num := splitID(t, b.id)
				if i > 0 && num != last+1 {
					t.Errorf("event %d: id number %d after %d, want consecutive ids", i, num, last)
				}
				last = num
			}
		})
	}
}

// TestBatchTopicAndEvent: ?topic= and ?event= apply to every line of a batch.
func TestBatchTopicAndEvent(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	onNews, onOther := ts.open(t, "topic=news"), ts.open(t, "topic=other")
	onNews.greeting(t)
	onOther.greeting(t)
	checkAccepted(t, ts.postTo(t, "topic=news&event=update", ndjson, "{\"n\":1}\n{\"n\":2}\n"), 2)
	checkAccepted(t, ts.postTo(t, "topic=other", ndjson, "{\"n\":3}\n"), 1)
	for n := 1; n <= 2; n++ {
		if b := onNews.nextEvent(t); b.event != "update" || eventN(t, b) != n {
			t.Fatalf("got %q, want event %d named update", b.raw, n)
		}
	}
	if b := onOther.nextEvent(t); b.event != "" || eventN(t, b) != 3 {
		t.Fatalf("got %q, want event 3, unnamed", b.raw)
	}
}

// TestBatchForwardedFor: each line is enriched as a single POST would be,
// X-Forwarded-For from a trusted proxy included.
func TestBatchForwardedFor(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	s := ts.open(t, "")
	s.greeting(t)
	post := func(contentType, body string) response {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.7")
		return ts.do(t, req)
	}
	if r := post("application/json", `{"n":0}`); r.status != http.StatusOK {
		t.Fatalf("single POST: %d %s", r.status, r.body)
	}
	checkAccepted(t, post(ndjson, "{\"n\":1}\n{\"n\":2}"), 2)
	for n := range 3 {
		if b, want := s.nextEvent(t), fmt.Sprintf(`{"n":%d,"user_ip":"203.0.113.7"}`, n); b.data != want {
			t.Errorf("got %q, want %s", b.data, want)
		}
	}
}

// TestBatchAllOrNothing: one invalid line refuses the whole batch with a 400
// whose JSON error names the line (blank lines count), and nothing of it is
// published.
func TestBatchAllOrNothing(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	s := ts.open(t, "")
	s.greeting(t)
	for _, tc := range []struct {
		name, body, line string
	}{
		{"invalid JSON", "{\"n\":1}\n{\"n\":2}\n{\"n\":}\n{\"n\":4}\n", "line 3"},
		{"array", "[1]\n{\"n\":2}\n", "line 1"},
		{"null", "{\"n\":1}\nnull\n", "line 2"},
		{"number", "{\"n\":1}\n\n\n42\n", "line 4"},
		{"string", "{\"n\":1}\r\n\"s\"\r\n", "line 2"},
		{"trailing data", "{\"n\":1} {\"n\":2}\n", "line 1"},
		{"object over two lines", "{\"n\":1,\n\"m\":2}\n", "line 1"},
		{"invalid UTF-8", "{\"n\":1}\n{\"s\":\"\xff\"}\n", "line 2"},
		{"lone surrogate escape", "{\"n\":1}\n{\"n\":2}\n{\"s\":\"\\ud800\"}\n", "line 3"},
		{"after many good lines", strings.Repeat("{\"n\":1}\n", 99) + "{\n", "line 100"},
	} {
		r := ts.postTo(t, "", ndjson, tc.body)
		checkError(t, r, http.StatusBadRequest, tc.line)
		if t.Failed() {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	r := ts.postTo(t, "", ndjson, "\n \r\n\n")
	checkError(t, r, http.StatusBadRequest, "empty")
	ts.mustPost(t, `{"marker":true}`)
	if b := s.nextEvent(t); !strings.HasPrefix(b.data, `{"marker":true,`) {
		t.Fatalf("part of a refused batch was published: %q", b.raw)
	}
	if h := health(t, ts); h.EventsAccepted != 1 {
		t.Errorf("events_accepted: %d, want 1", h.EventsAccepted)
	}
}

// TestBatchLimit: a batch has its own size limit, MaxBatch, independent of
// MaxBody: a batch of exactly MaxBatch bytes is accepted, one byte more is
// a 413 (announced or not), and nothing of it is published.
func TestBatchLimit(t *testing.T) {
	t.Parallel()
	const maxBody, maxBatch = 256, 4096
	ts := start(t, func(c *server.Config) {
		c.Heartbeat = time.Hour
		c.MaxBody = maxBody
		c.MaxBatch = maxBatch
	})
	s := ts.open(t, "")
	s.greeting(t)
	// 20 lines of 200 bytes (with their LF), then padding to the limit:
	// each line is under MaxBody, the whole is far over it.
	line := func(n int, size int) string {
		head := fmt.Sprintf(`{"n":%d,"pad":"`, n)
		return head + strings.Repeat("x", size-len(head)-3) + "\"}\n"
	}
	var exact strings.Builder
	for n := range 20 {
		exact.WriteString(line(n, 200))
	}
	exact.WriteString(line(20, maxBatch-exact.Len()))
	if exact.Len() != maxBatch {
		t.Fatalf("test batch is %d bytes, want %d", exact.Len(), maxBatch)
	}
	over := exact.String() + "\n"

	checkError(t, ts.postTo(t, "", "application/json", exact.String()[:maxBody+1]), http.StatusRequestEntityTooLarge, fmt.Sprint(maxBody))
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(over)
		if chunked {
			body = io.MultiReader(strings.NewReader(over)) // no length known: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events", body)
		req.Header.Set("Content-Type", ndjson)
		checkError(t, ts.do(t, req), http.StatusRequestEntityTooLarge, fmt.Sprint(maxBatch))
	}
	checkAccepted(t, ts.postTo(t, "", ndjson, exact.String()), 21)
	for n := range 21 {
		if b := s.nextEvent(t); eventN(t, b) != n {
			t.Fatalf("got %.40q, want event %d: part of a refused batch was published?", b.raw, n)
		}
	}
}

// TestBatchEventLimit: a batch may hold at most MaxBatchEvents events (by
// default a quarter of the buffer, however small they are); past it, 413
// naming the limit, and nothing is published; blank lines do not count.
func TestBatchEventLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		buffer, config int
		limit          int
	}{
		{"default: a quarter of the buffer", 64, 0, 16},
		{"set", 64, 5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startBuffered(t, tc.buffer, func(c *server.Config) {
				c.Heartbeat = time.Hour
				c.MaxBatchEvents = tc.config
			})
			s := ts.open(t, "")
			s.greeting(t)
			lines := func(n int) string {
				var b strings.Builder
				for i := range n {
					fmt.Fprintf(&b, "{\"n\":%d}\n\n", i) // a blank line after each
				}
				return b.String()
			}
			checkError(t, ts.postTo(t, "", ndjson, lines(tc.limit+1)), http.StatusRequestEntityTooLarge, "max-batch-events")
			checkAccepted(t, ts.postTo(t, "", ndjson, lines(tc.limit)), tc.limit)
			for n := range tc.limit {
				if b := s.nextEvent(t); eventN(t, b) != n {
					t.Fatalf("got %.40q, want event %d: part of a refused batch was published?", b.raw, n)
				}
			}
		})
	}
}

// TestBatchIsContiguous: a batch's events reach listeners one after the
// other, with consecutive ids, even while other producers post at the same
// time.
func TestBatchIsContiguous(t *testing.T) {
	t.Parallel()
	const batches, lines, singles = 10, 50, 300
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	s := ts.open(t, "")
	s.greeting(t)
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Go(func() {
			for n := range singles / 2 {
				if r := ts.postTo(t, "", "application/json", fmt.Sprintf(`{"single":%d,"p":%d}`, n, p)); r.status != http.StatusOK {
					t.Errorf("single POST: %d %s", r.status, r.body)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for k := range batches {
			var body strings.Builder
			for n := range lines {
				fmt.Fprintf(&body, "{\"batch\":%d,\"n\":%d}\n", k, n)
			}
			if r := ts.postTo(t, fmt.Sprintf("topic=t%d", k%2), ndjson, body.String()); r.status != http.StatusOK {
				t.Errorf("batch: %d %s", r.status, r.body)
				return
			}
		}
	})
	wg.Wait()
	var lastNum uint64
	inBatch, batch := 0, -1
	for range batches*lines + singles {
		b := s.nextEvent(t)
		_, num := splitID(t, b.id)
		if lastNum != 0 && num != lastNum+1 {
			t.Fatalf("id number %d after %d", num, lastNum)
		}
		lastNum = num
		var e struct {
			Batch *int `json:"batch"`
			N     int  `json:"n"`
		}
		if err := json.Unmarshal([]byte(b.data), &e); err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Batch == nil && inBatch > 0:
			t.Fatalf("a single event within batch %d, after its line %d", batch, inBatch)
		case e.Batch == nil:
		case inBatch == 0 && e.N == 0:
			batch, inBatch = *e.Batch, 1
		case *e.Batch != batch || e.N != inBatch:
			t.Fatalf("got line %d of batch %d, want line %d of batch %d", e.N, *e.Batch, inBatch, batch)
		default:
			inBatch++
		}
		if inBatch == lines {
			inBatch = 0
		}
	}
}

package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// Helpers for the tests of ids, resume, topics, named events and batches:
// they read a stream block by block (a block is what lies between blank
// lines), keeping each block's exact bytes, so that a test sees retry hints,
// ids and gap events as they are on the wire.

// block is one block of an event stream, as sent.
type block struct {
	raw      string // the block's bytes, its blank line included
	id       string // the id field's value; see hasID
	event    string // the event field's value, "" when absent
	topic    string // the topic field's value, "" when absent
	data     string // the data field's value (one data line: the service never sends more)
	comments []string
	retry    int64 // the retry field's value, -1 when absent
	hasID    bool
	hasData  bool
}

// isEvent reports whether the block dispatches an event (it has data).
func (b *block) isEvent() bool { return b.hasData }

// isGap reports whether the block is a gap event.
func (b *block) isGap() bool { return b.hasData && b.event == "gap" }

// parseBlock parses the lines of one block (without its blank line).
func parseBlock(raw string) block {
	b := block{raw: raw, retry: -1}
	for line := range strings.SplitSeq(strings.TrimSuffix(raw, "\n\n"), "\n") {
		if strings.HasPrefix(line, ":") {
			b.comments = append(b.comments, strings.TrimPrefix(line[1:], " "))
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			b.id, b.hasID = value, true
		case "event":
			b.event = value
		case "topic":
			b.topic = value
		case "data":
			b.data, b.hasData = value, true
		case "retry":
			if n, err := strconv.ParseInt(value, 10, 64); err == nil {
				b.retry = n
			}
		}
	}
	return b
}

// sseStream is one listener on /events reading blocks in the background.
type sseStream struct {
	resp   *http.Response
	blocks chan block
	done   chan struct{} // closed when the stream ended
	err    error         // why it ended (io.EOF: cleanly); read after done
	tail   string        // bytes after the last complete block; read after done
	cancel context.CancelFunc
	opened time.Time // just before the request was sent
}

// open starts a GET /events with the given query (without "?": "" for none)
// and headers (name, value pairs), and returns once the response head
// arrived. The stream is closed when the test ends.
func (ts *testServer) open(tb testing.TB, query string, headers ...string) *sseStream {
	tb.Helper()
	url := ts.url + "/events"
	if query != "" {
		url += "?" + query
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	opened := time.Now()
	resp, err := ts.client.Do(req) //nolint:bodyclose // closed by sseStream.close, registered as a cleanup below
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", url, err)
	}
	s := &sseStream{resp: resp, blocks: make(chan block, 1<<16), done: make(chan struct{}), cancel: cancel, opened: opened}
	go s.read()
	tb.Cleanup(s.close)
	return s
}

func (s *sseStream) read() {
	defer close(s.done)
	br := bufio.NewReader(s.resp.Body)
	var cur strings.Builder
	for {
		line, err := br.ReadString('\n')
		cur.WriteString(line)
		if err != nil {
			s.tail, s.err = cur.String(), err
			return
		}
		if line == "\n" {
			s.blocks <- parseBlock(cur.String())
			cur.Reset()
		}
	}
}

// close disconnects the listener and waits for its reader to stop.
func (s *sseStream) close() {
	s.cancel()
	_ = s.resp.Body.Close()
	<-s.done
}

// next returns the next block, failing the test if none comes in time.
func (s *sseStream) next(tb testing.TB) block {
	tb.Helper()
	select {
	case b := <-s.blocks:
		return b
	case <-s.done:
		select {
		case b := <-s.blocks:
			return b
		default:
		}
		tb.Fatalf("stream ended (%v, tail %q) while waiting for a block", s.err, s.tail)
	case <-time.After(waitFor):
		tb.Fatalf("no block within %v", waitFor)
	}
	return block{}
}

// nextEvent returns the next block that dispatches an event (gap events
// included), skipping comments and retry hints.
func (s *sseStream) nextEvent(tb testing.TB) block {
	tb.Helper()
	for {
		if b := s.next(tb); b.isEvent() {
			return b
		}
	}
}

// greeting reads the first block, checks that it is the greeting with a
// retry hint (after the "connected" comment, it may tell a listener what its
// token allows and its filter), and returns the hint.
func (s *sseStream) greeting(tb testing.TB) int64 {
	tb.Helper()
	b := s.next(tb)
	if len(b.comments) < 1 || b.comments[0] != "connected" || b.retry < 0 || b.isEvent() {
		tb.Fatalf("first block: got %q, want the greeting with a retry hint", b.raw)
	}
	return b.retry
}

// quiet checks that no event arrives within d (comments are allowed).
func (s *sseStream) quiet(tb testing.TB, d time.Duration) {
	tb.Helper()
	deadline := time.After(d)
	for {
		select {
		case b := <-s.blocks:
			if b.isEvent() {
				tb.Fatalf("unexpected block %q", b.raw)
			}
		case <-deadline:
			return
		}
	}
}

// waitEnd waits for the stream to end and returns the blocks it still
// delivered; the test fails if the stream did not end cleanly on a complete
// block.
func (s *sseStream) waitEnd(tb testing.TB) []block {
	tb.Helper()
	select {
	case <-s.done:
	case <-time.After(waitFor):
		tb.Fatalf("stream did not end within %v", waitFor)
	}
	if s.err != io.EOF || s.tail != "" {
		tb.Fatalf("stream ended with %v after %q, want a clean end on a complete block", s.err, s.tail)
	}
	var rest []block
	for {
		select {
		case b := <-s.blocks:
			rest = append(rest, b)
		default:
			return rest
		}
	}
}

// postTo sends body to /api/events?query with the given Content-Type.
func (ts *testServer) postTo(tb testing.TB, query, contentType, body string) response {
	tb.Helper()
	url := ts.url + "/api/events"
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return ts.do(tb, req)
}

// mustPostTo is postTo of a JSON body, failing the test unless it gets 200.
func (ts *testServer) mustPostTo(tb testing.TB, query, body string) {
	tb.Helper()
	if r := ts.postTo(tb, query, "application/json", body); r.status != http.StatusOK {
		tb.Fatalf("POST ?%s %s: status %d, body %s", query, body, r.status, r.body)
	}
}

// idPattern is what the issue allows of an id; idParts splits the service's
// ids into their space prefix and number.
var (
	idPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,40}$`)
	idParts   = regexp.MustCompile(`^(r[0-9a-z]+-)([1-9][0-9]*)$`)
)

// splitID returns an id's space prefix and number, failing the test if the
// id does not have the service's form.
func splitID(tb testing.TB, id string) (prefix string, n uint64) {
	tb.Helper()
	if !idPattern.MatchString(id) {
		tb.Fatalf("id %q: want 1 to 40 characters from [0-9A-Za-z_-]", id)
	}
	m := idParts.FindStringSubmatch(id)
	if m == nil {
		tb.Fatalf("id %q: want r<run>-<n>", id)
	}
	n, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		tb.Fatalf("id %q: %v", id, err)
	}
	return m[1], n
}

// gapMissed returns the missed count of a gap event: the number, or -1 for
// null.
func gapMissed(tb testing.TB, b block) int64 {
	tb.Helper()
	if !b.isGap() {
		tb.Fatalf("got %q, want a gap event", b.raw)
	}
	var g struct {
		Missed *int64 `json:"missed"`
	}
	if err := json.Unmarshal([]byte(b.data), &g); err != nil {
		tb.Fatalf("gap data %q: %v", b.data, err)
	}
	if b.data != `{"missed":null}` && g.Missed == nil {
		tb.Fatalf("gap data %q: want {\"missed\":N} or {\"missed\":null}", b.data)
	}
	if g.Missed == nil {
		return -1
	}
	return *g.Missed
}

// eventN returns the "n" field of an event's data, failing the test if it
// has none.
func eventN(tb testing.TB, b block) int {
	tb.Helper()
	var e struct {
		N *int `json:"n"`
	}
	if err := json.Unmarshal([]byte(b.data), &e); err != nil || e.N == nil {
		tb.Fatalf("event %q: want a body with an \"n\" field", b.raw)
	}
	return *e.N
}

// rawStream10 opens /events with an HTTP/1.0 request over a plain TCP
// connection and returns it with a reader positioned after the response
// head. Reads on it time out after waitFor.
func rawStream10(tb testing.TB, ts *testServer) (net.Conn, *bufio.Reader) {
	tb.Helper()
	addr := strings.TrimPrefix(ts.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	if _, err := fmt.Fprintf(conn, "GET /events HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
		tb.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		tb.Fatalf("HTTP/1.0 stream: status line %q, %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			tb.Fatalf("HTTP/1.0 stream: reading the head: %v", err)
		}
		if line == "\r\n" {
			return conn, br
		}
	}
}

// readRaw10 reads blocks from an unchunked stream until it has want events,
// and returns their bytes by id.
func readRaw10(tb testing.TB, br *bufio.Reader, want int) map[string]string {
	tb.Helper()
	got := make(map[string]string, want)
	var cur strings.Builder
	for len(got) < want {
		line, err := br.ReadString('\n')
		if err != nil {
			tb.Fatalf("HTTP/1.0 stream after %d events: %v", len(got), err)
		}
		cur.WriteString(line)
		if line != "\n" {
			continue
		}
		if b := parseBlock(cur.String()); b.isEvent() {
			got[b.id] = b.raw
		}
		cur.Reset()
	}
	return got
}

// rawStreamQuery is rawStream for /events?query.
func rawStreamQuery(tb testing.TB, ts *testServer, query string, readBuffer int) (*net.TCPConn, *bufio.Reader) {
	tb.Helper()
	conn, br, _ := rawGet(tb, ts, "/events?"+query, readBuffer)
	return conn, br
}

// readAccountedFor reads a lagging listener's stream until events posted as
// {"n":0} .. {"n":events-1} are accounted for: each event read must be the
// next one expected, each gap event skips exactly what it says was missed,
// and at least one gap must come (else the listener never lagged and the
// caller tested nothing). Anything else in the stream (another topic's
// event, one out of order, a count that overshoots) fails the test.
func readAccountedFor(tb testing.TB, r *sseclient.Reader, events int) {
	tb.Helper()
	next, gaps := 0, 0
	for next < events {
		m, err := r.Next()
		if err != nil {
			tb.Fatalf("after %d events: %v", next, err)
		}
		switch {
		case m.Comment:
		case m.Type == "gap":
			var g struct{ Missed int }
			if err := json.Unmarshal([]byte(m.Data), &g); err != nil || g.Missed < 1 {
				tb.Fatalf("gap event %q", m.Data)
			}
			next += g.Missed
			gaps++
		default:
			var e struct{ N *int }
			if err := json.Unmarshal([]byte(m.Data), &e); err != nil || e.N == nil {
				tb.Fatalf("event %.40q: not one of the numbered events", m.Data)
			}
			if *e.N != next {
				tb.Fatalf("got event %d, want %d (after %d gaps)", *e.N, next, gaps)
			}
			next++
		}
	}
	if gaps == 0 {
		tb.Fatal("the listener never lagged: the test did not test anything")
	}
	if next != events {
		tb.Fatalf("accounted for %d events, want %d", next, events)
	}
}

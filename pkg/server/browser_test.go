package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/browsertest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// resumePage is the page the browser test loads: an EventSource on the
// service (another origin: CORS), recording every event's id and data, named
// events and gaps, and each (re)connection.
const resumePage = `<!doctype html><meta charset="utf-8"><title>resume</title>
<script>
window.events = []; window.gaps = []; window.opens = 0; window.lastIds = [];
const es = new EventSource(%q);
es.onopen = () => { window.opens++; };
es.onmessage = (e) => { window.events.push({id: e.lastEventId, data: e.data}); };
es.addEventListener("play", (e) => { window.events.push({id: e.lastEventId, data: e.data, name: "play"}); });
es.addEventListener("gap", (e) => { window.gaps.push(e.data); });
</script>`

// TestBrowserResumesAcrossStreamEnds: a real Chromium's EventSource receives
// events; the service ends the stream every second or so (-max-stream-age);
// the browser reconnects by itself with Last-Event-ID and the page ends up
// with every event exactly once, in order, named events included, and no gap.
func TestBrowserResumesAcrossStreamEnds(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) {
		c.MaxStreamAge = time.Second
		c.Retry = 100 * time.Millisecond
	})
	page := servePage(t, fmt.Sprintf(resumePage, ts.url+"/events"))
	ctx := browsertest.New(t)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	pollPage(t, ctx, "the EventSource open", `window.opens >= 1`)

	// 60 events over about 3.6 s: the stream ends (and the browser
	// reconnects) several times meanwhile.
	const events = 60
	for n := range events {
		query := ""
		if n%10 == 9 {
			query = "event=play"
		}
		r := ts.postTo(t, query, "application/json", fmt.Sprintf(`{"n":%d}`, n))
		if r.status != http.StatusOK {
			t.Fatalf("POST %d: %d %s", n, r.status, r.body)
		}
		time.Sleep(60 * time.Millisecond)
	}
	pollPage(t, ctx, "every event on the page", fmt.Sprintf(`window.events.length >= %d`, events))
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive by now

	var got struct {
		Events []struct{ ID, Data, Name string }
		Gaps   []string
		Opens  int
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({events: window.events, gaps: window.gaps, opens: window.opens})`))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	if got.Opens < 3 {
		t.Errorf("the EventSource opened %d times: the streams did not end and resume (want 3 or more)", got.Opens)
	}
	if len(got.Gaps) > 0 {
		t.Errorf("gap events: %v", got.Gaps)
	}
	if len(got.Events) != events {
		t.Fatalf("%d events on the page, want %d exactly once: %v", len(got.Events), events, got.Events)
	}
	for n, e := range got.Events {
		if want := fmt.Sprintf(`{"n":%d,"user_ip":"127.0.0.1"}`, n); e.Data != want {
			t.Fatalf("event %d: %q, want %q (all: %v)", n, e.Data, want, got.Events)
		}
		if wantName := n%10 == 9; (e.Name == "play") != wantName {
			t.Errorf("event %d: name %q", n, e.Name)
		}
		if e.ID == "" {
			t.Errorf("event %d without an id", n)
		}
	}
	t.Logf("%d events, %d connections, no duplicate, no gap", events, got.Opens)
}

// servePage serves html on a loopback port of its own (another origin than
// the service's) until the test ends, and returns its URL.
func servePage(t *testing.T, html string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, html)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return "http://" + ln.Addr().String() + "/"
}

// pollPage waits, in the page, for a JavaScript expression to be true.
func pollPage(t *testing.T, ctx context.Context, what, expr string) { //nolint:revive // t first, as every test helper
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingTimeout(waitFor), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({events: window.events, gaps: window.gaps, opens: window.opens})`))
		t.Fatalf("%s: not true within %v (%v); the page has %s", what, waitFor, err, state)
	}
}

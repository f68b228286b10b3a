package viewer_test

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/browsertest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/viewer"
)

// scripted serves the viewer with a stand-in for the service whose /events
// stream sends what the test writes, so a test can send what the service
// sends only in rare conditions (gap events) or never (odd line endings,
// fields split between writes), and see what the page asked for.
type scripted struct {
	srv      *fasthttp.Server
	served   chan error
	requests chan request // each /events request
	addr     string

	mu      sync.Mutex
	current chan string   // frames for the newest stream; "" ends it
	stop    chan struct{} // closed to end the newest stream at once
}

// request is what the page sent to /events.
type request struct {
	query       url.Values
	auth        string // Authorization
	lastEventID string // Last-Event-ID
	accept      string
}

func startScripted(tb testing.TB) *scripted {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &scripted{addr: ln.Addr().String(), served: make(chan error, 1), requests: make(chan request, 16)}
	// NoDefaultDate: the Date header needs a process-wide goroutine that
	// never stops, which goleak would report.
	s.srv = &fasthttp.Server{Handler: s.handle, CloseOnShutdown: true, NoDefaultDate: true}
	go func() { s.served <- s.srv.Serve(ln) }()
	tb.Cleanup(func() {
		s.mu.Lock()
		if s.stop != nil {
			close(s.stop)
			s.stop = nil
		}
		s.mu.Unlock()
		if err := s.srv.Shutdown(); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := <-s.served; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return s
}

func (s *scripted) url() string { return "http://" + s.addr }

func (s *scripted) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/":
		viewer.Handler(ctx)
	case "/health":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"message":"PONG","listeners":7,"events_accepted":12345}`)
	case "/events":
		q, _ := url.ParseQuery(string(ctx.QueryArgs().QueryString()))
		h := &ctx.Request.Header
		req := request{query: q, auth: string(h.Peek("Authorization")), lastEventID: string(h.Peek("Last-Event-ID")),
			accept: string(h.Peek("Accept"))}
		frames, stop := make(chan string, 4096), make(chan struct{})
		s.mu.Lock()
		if s.stop != nil {
			close(s.stop) // one stream at a time: the page left the old one
		}
		s.current, s.stop = frames, stop
		s.mu.Unlock()
		s.requests <- req // after current is set: frames the test sends next go to this stream
		ctx.SetContentType("text/event-stream")
		ctx.Response.Header.Set("Cache-Control", "no-cache")
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			_, _ = w.WriteString(": connected\n\n")
			for {
				if w.Flush() != nil {
					return
				}
				select {
				case f := <-frames:
					if f == "" {
						return
					}
					_, _ = w.WriteString(f)
				case <-stop:
					return
				}
			}
		})
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// send writes frames, verbatim, to the newest stream, each flushed on its
// own.
func (s *scripted) send(frames ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range frames {
		if f != "" {
			s.current <- f
		}
	}
}

// end ends the newest stream after what was sent to it.
func (s *scripted) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current <- ""
}

// request returns the next /events request.
func (s *scripted) request(tb testing.TB) request {
	tb.Helper()
	select {
	case r := <-s.requests:
		return r
	case <-time.After(waitFor):
		tb.Fatalf("no /events request within %v", waitFor)
		return request{}
	}
}

// TestViewerShowsEveryKindOfEvent checks what the page makes of the stream:
// the token and topics it asks for, the stream format read by the page
// (line endings, chunks, comments, odd fields, incomplete events), the ids it
// resumes from, named and gap events, exact JSON, the bound on the list, the
// service's counters, and the phone layout.
func TestViewerShowsEveryKindOfEvent(t *testing.T) {
	s := startScripted(t)
	ctx := browsertest.New(t)
	console := browsertest.RecordConsole(t, ctx)

	t.Log("step: the page's token and topic go to /events")
	do(t, ctx, chromedp.Navigate(s.url()+"/?token=s3cret&topic=alpha"))
	until(t, ctx, waitFor, "state open", stateIs("open"))
	if r := s.request(t); r.auth != "Bearer s3cret" || r.query.Has("token") || fmt.Sprint(r.query["topic"]) != "[alpha]" ||
		r.lastEventID != "" || r.accept != "text/event-stream" {
		t.Errorf("/events request: got %+v, want the token as a bearer token (not in the URL), topic=alpha, no Last-Event-ID", r)
	}

	t.Log("step: ids, exact numbers and escapes")
	s.send(`id: 7` + "\n" + `data: {"n":12345678901234567890,"s":"caf\u00e9","o":{"a":[1,true,null]},"e":{}}` + "\n\n")
	until(t, ctx, waitFor, "the event", shown("12345678901234567890"))
	if es := entries(t, ctx); len(es) != 1 || es[0].Name != "message" || es[0].Topic != "default" || es[0].Title != "id 7" ||
		strings.Contains(es[0].Text, "7 ") {
		t.Fatalf("entries: %+v, want one message on the default topic, its id in the tooltip only", es)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS("#events .event summary")))
	until(t, ctx, waitFor, "the tree", `document.querySelector('#events .json') !== null`)
	tree, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](`({
		number: document.querySelector('#events .json .n').textContent,
		string: document.querySelector('#events .json .s').textContent,
		keys: [...document.querySelectorAll('#events .json .k')].map((k) => k.textContent).join(' '),
		text: document.querySelector('#events .json').textContent,
		info: document.querySelector('#events .info').textContent,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if tree["number"] != "12345678901234567890" || tree["string"] != `"caf\u00e9"` || tree["keys"] != `"n" "s" "o" "a" "e"` {
		t.Errorf("tree: got %q; want the literal number, the escape as sent and the keys in order", tree)
	}
	if tree["info"] != "id 7topic defaultevent message" {
		t.Errorf("an opened event says %q; want its id, topic and name", tree["info"])
	}
	// Folding a node hides its children.
	do(t, ctx, chromedp.Click(chromedp.CSS(`#events .json .node .node > .tog`)))
	until(t, ctx, waitFor, "the folded node", `document.querySelector('#events .json .node .node').classList.contains('collapsed')
		&& document.querySelector('#events .json .node .node > .kids').offsetParent === null`)
	// Opening the event paused the list; closing it resumes.
	until(t, ctx, waitFor, "paused", `document.querySelector('#live-state').textContent === 'Paused while you read an event'`)
	do(t, ctx, chromedp.Click(chromedp.CSS("#events .event summary")))
	until(t, ctx, waitFor, "live", `document.querySelector('#live-state').textContent === 'Live'`)

	t.Log("step: the stream format, as the WHATWG standard reads it")
	{
		s.send("retry: 100\n\n", // reconnect soon after the stream ends
			"id: 8\r\nevent: start\r\ntopic: player\r\ndata: {\"crlf\":1}\r\n\r\n",
			"id: 9\revent: stop\rtopic: ads.video\rdata: {\"cr\":1}\r\r",
			": a comment\n", "unknown: field\nidentity: 3\n\n", // a block without data dispatches nothing
			"id: 10\r", "\ndata: {\"split\":", "1}\r", "\n\r", "\n", // a CRLF split between chunks is one line end
			"data: {\"multi\":\ndata:[1,\ndata\ndata: 2]}\n\n", // data lines joined with LF; "data" alone adds an empty line
			"id: bad\x00id\ndata: {\"nul\":1}\n\n",             // an id with NUL is ignored
		)
		until(t, ctx, waitFor, "the events", shown(`{"crlf":1}`)+" && "+shown(`{"cr":1}`)+" && "+shown(`{"split":1}`)+
			" && "+shown(`{"nul":1}`)+` && document.querySelectorAll('#events .event').length === 6`)
		es := entries(t, ctx)
		if want := "{\"multi\":\n[1,\n\n2]}"; !strings.Contains(es[1].Text, want) {
			t.Errorf("multi-line data: got %q, want %q", es[1].Text, want)
		}
		if es[0].Title != "" {
			t.Errorf("an id with NUL was taken: %q", es[0].Title)
		}
		for i, want := range []entry{{Name: "message", Topic: "default", Title: "id 10"}, {Name: "stop", Topic: "ads.video", Title: "id 9"},
			{Name: "start", Topic: "player", Title: "id 8"}} {
			if got := es[2+i]; got.Name != want.Name || got.Topic != want.Topic || got.Title != want.Title {
				t.Errorf("entry %d: name %q, topic %q, tooltip %q; want %q, %q, %q", 2+i, got.Name, got.Topic, got.Title, want.Name, want.Topic, want.Title)
			}
		}
		if es[3].Class != "event named" || es[2].Class != "event" {
			t.Errorf("classes %q, %q: want named events marked", es[3].Class, es[2].Class)
		}

		t.Log("step: an incomplete event at the end is dropped; the page resumes from the last id")
		s.send("id: 99\ndata: {\"partial\":1}\n")
		s.end()
		until(t, ctx, waitFor, "state reconnecting", stateIs("reconnecting"))
		if r := s.request(t); r.lastEventID != "10" || r.auth != "Bearer s3cret" || fmt.Sprint(r.query["topic"]) != "[alpha]" {
			t.Errorf("reconnection: got %+v, want Last-Event-ID: 10, the token and the topic", r)
		}
		until(t, ctx, waitFor, "state open", stateIs("open"))
	}

	t.Log("step: gap events")
	s.send("event: gap\ndata: {\"missed\":3}\n\n", "event: gap\ndata: {\"missed\":null}\n\n")
	until(t, ctx, waitFor, "two gap entries", `document.querySelectorAll('#events .event.gap').length === 2`)
	if es := entries(t, ctx); !strings.Contains(es[0].Text, "missed events (number unknown)") || !strings.Contains(es[1].Text, "missed 3 events") ||
		es[0].Name != "gap" || es[0].Topic != "" || es[0].Title == "" {
		t.Errorf("gap entries: %+v", es[:2])
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#events .gap details').length`)); err != nil || n != 0 {
		t.Errorf("%d gap entries open (%v); a gap has nothing more to show", n, err)
	}
	if strings.Contains(fmt.Sprint(entries(t, ctx)), `"partial"`) {
		t.Error("the incomplete event was shown")
	}
	// A gap has no id: the page still resumes from the last event's.
	s.end()
	if r := s.request(t); r.lastEventID != "10" {
		t.Errorf("reconnection after a gap: Last-Event-ID %q, want 10", r.lastEventID)
	}
	until(t, ctx, waitFor, "state open", stateIs("open"))

	t.Log("step: every named event, with its name; the names filter")
	s.send("event: start\ndata: {\"named\":1}\n\n", "event: stop\ndata: {\"named\":2}\n\n", "event: other\ndata: {\"named\":3}\n\n", "data: {\"sync\":1}\n\n")
	until(t, ctx, waitFor, "the named events", shown(`"named":1`)+" && "+shown(`"named":2`)+" && "+shown(`"named":3`)+" && "+shown(`"sync":1`))
	if es := entries(t, ctx); es[1].Name != "other" || es[2].Name != "stop" || es[3].Name != "start" || es[0].Name != "message" {
		t.Errorf("named entries: %+v", es[:4])
	}
	setInput(t, ctx, "names", "start, stop")
	until(t, ctx, waitFor, "only start and stop", `[...document.querySelectorAll('#events .event')].every((e) =>
		e.hidden === !['start', 'stop', 'gap'].includes(e.querySelector('.name').textContent))`)
	until(t, ctx, waitFor, "the filter note", `document.querySelector('#note').textContent.startsWith('Filter: 6 of 12 shown')`)
	setInput(t, ctx, "names", "")
	until(t, ctx, waitFor, "all shown again", `[...document.querySelectorAll('#events .event')].every((e) => !e.hidden)`)

	t.Log("step: changing the topics reconnects")
	setInput(t, ctx, "topics", "b, c")
	if r := s.request(t); r.auth != "Bearer s3cret" || fmt.Sprint(r.query["topic"]) != "[b c]" || r.lastEventID != "" {
		t.Errorf("/events request after the change: got %+v, want the token, topic=b, topic=c and no Last-Event-ID (new topics start afresh)", r)
	}
	until(t, ctx, waitFor, "state open", stateIs("open"))
	setInput(t, ctx, "names", "start,stop")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(loc, "/?token=s3cret&topic=b&topic=c&event=start&event=stop") {
		t.Errorf("page URL %q (%v): want the settings written back", loc, err)
	}
	setInput(t, ctx, "names", "")

	t.Log("step: a burst keeps the list bounded, newest first")
	var burst strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&burst, "data: {\"burst\":%d}\n\n", i)
		if i == 100 {
			burst.WriteString("event: gap\ndata: {\"missed\":777}\n\n") // skipped events hide no gap
		}
	}
	s.send(burst.String())
	until(t, ctx, waitFor, "the last of the burst", shown(`{"burst":999}`))
	es := entries(t, ctx)
	if len(es) > 300 || !strings.Contains(es[0].Text, `{"burst":999}`) || !strings.Contains(es[1].Text, `{"burst":998}`) {
		t.Errorf("after the burst: %d entries, first %q; want at most 300, newest first", len(es), es[0].Text)
	}
	until(t, ctx, waitFor, "the gap in the burst", shown("missed 777 events"))
	until(t, ctx, waitFor, "the busy note", `document.querySelector('#note').textContent.includes('only the newest events are drawn')`)
	// 6, 4 named and unnamed, then the burst; gaps are not events.
	until(t, ctx, waitFor, "all counted", `document.querySelector('#received').textContent.replace(/\D/g, '') === '1010'`)

	t.Log("step: the service's counters")
	until(t, ctx, waitFor, "counters from /health", `document.querySelector('#listeners').textContent === '7'
		&& document.querySelector('#accepted').textContent.replace(/\D/g, '') === '12345'`)
	labels, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`['rate', 'received', 'listeners', 'accepted'].map((id) =>
		[...document.getElementById(id).parentElement.children].map((e) => e.id ? '#' : e.textContent).join(' '))`))
	if err != nil {
		t.Fatal(err)
	}
	// Each counter says what it counts: this page's events, or the service's.
	if want := []string{"Events/s (this page) # in the last second", "Received by this page # since it was opened, on its topics",
		"Listeners on the service # streams open now, this page’s included", "Accepted by the service # all topics, since it started"}; fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("counters:\n got %q\nwant %q", labels, want)
	}

	t.Log("step: a phone screen")
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	until(t, ctx, waitFor, "no horizontal scrolling", `document.documentElement.scrollWidth <= window.innerWidth`)
	// Every control fits the width: none is cut off or pushed out.
	until(t, ctx, waitFor, "controls within the screen", `[...document.querySelectorAll('input, button, #state, canvas')]
		.every((e) => { const r = e.getBoundingClientRect(); return r.left >= 0 && r.right <= window.innerWidth; })`)

	if errs := console.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

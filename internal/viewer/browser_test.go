package viewer_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/browsertest"
)

// flow posts events, {"marker":"m-flow-<n>"}, at a steady rate until
// stopped.
type flow struct {
	done chan struct{}
	end  chan flowEnd
}

type flowEnd struct {
	err  error
	sent int
}

func startFlow(svc *service, perSecond int) *flow {
	f := &flow{done: make(chan struct{}), end: make(chan flowEnd, 1)}
	go func() {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: waitFor}
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-f.done:
				f.end <- flowEnd{sent: n}
				return
			case <-tick.C:
			}
			resp, err := c.Post(svc.url()+"/api/events", "application/json", strings.NewReader(fmt.Sprintf(`{"marker":"m-flow-%d"}`, n)))
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("POST: %s", resp.Status)
				}
			}
			if err != nil {
				f.end <- flowEnd{sent: n, err: err}
				<-f.done
				return
			}
		}
	}()
	return f
}

// stop stops the flow and returns how many events it posted.
func (f *flow) stop(tb testing.TB) int {
	tb.Helper()
	close(f.done)
	e := <-f.end
	if e.err != nil {
		tb.Fatalf("flow: %v", e.err)
	}
	return e.sent
}

// idTooltip is the tooltip of an event's row: its id, as the service makes
// them.
var idTooltip = regexp.MustCompile(`^id r[0-9a-z]+-[0-9]+$`)

// shownWithin is how soon an event POSTed to the service must be on the
// page: the viewer is live. Every other wait is waitFor.
const shownWithin = 2 * time.Second

// TestViewerAgainstTheService drives the viewer in a real browser against
// the real service: connection state, live events, filter, pause and resume,
// and reconnection across a server restart on the same address.
func TestViewerAgainstTheService(t *testing.T) {
	svc := startService(t, "127.0.0.1:0", nil)
	c := client(t)
	ctx := browsertest.New(t)
	console := browsertest.RecordConsole(t, ctx)

	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state open", stateIs("open"))
	if errs := console.Errors(); len(errs) > 0 {
		t.Fatalf("console errors after loading (a CSP violation?): %q", errs)
	}

	t.Log("step: a POST appears")
	{
		post(t, c, svc, `{"test":"first","marker":"m-first"}`)
		until(t, ctx, shownWithin, "the POSTed event on the page", shown("m-first"))
		es := entries(t, ctx)
		if len(es) != 1 || es[0].Class != "event" || es[0].Name != "message" || es[0].Topic != "default" ||
			!strings.Contains(es[0].Text, `"user_ip":"127.0.0.1"`) || !idTooltip.MatchString(es[0].Title) {
			t.Errorf("entries: got %+v, want one message on the default topic with the enriched JSON, its id in the tooltip", es)
		}
		until(t, ctx, waitFor, "the service's counters", `document.querySelector('#listeners').textContent === '1'
			&& document.querySelector('#accepted').textContent === '1'`)
	}

	t.Log("step: each event's topic and name")
	{
		postTo(t, c, svc, "topic=player&event=start", `{"marker":"m-player-start"}`)
		postTo(t, c, svc, "topic=ads.video&event=impression", `{"marker":"m-ads-impression"}`)
		postTo(t, c, svc, "event=stop", `{"marker":"m-default-stop"}`)
		postTo(t, c, svc, "topic=player", `{"marker":"m-player-message"}`)
		until(t, ctx, waitFor, "the four events", shown("m-player-message"))
		es := entries(t, ctx)
		for i, want := range []entry{{Topic: "player", Name: "message"}, {Topic: "default", Name: "stop"},
			{Topic: "ads.video", Name: "impression"}, {Topic: "player", Name: "start"}} {
			if es[i].Topic != want.Topic || es[i].Name != want.Name || !idTooltip.MatchString(es[i].Title) || strings.Contains(es[i].Text, es[i].Title[3:]) {
				t.Errorf("entry %d: %+v; want topic %q, name %q, the id in the tooltip only", i, es[i], want.Topic, want.Name)
			}
		}
		// Only the chosen topics.
		setInput(t, ctx, "topics", "player")
		until(t, ctx, waitFor, "state open", stateIs("open"))
		until(t, ctx, waitFor, "one listener", `document.querySelector('#listeners').textContent === '1'`)
		postTo(t, c, svc, "topic=ads.video", `{"marker":"m-not-for-me"}`)
		postTo(t, c, svc, "topic=player&event=stop", `{"marker":"m-player-stop"}`)
		until(t, ctx, waitFor, "the player event", shown("m-player-stop"))
		if strings.Contains(fmt.Sprint(entries(t, ctx)), "m-not-for-me") {
			t.Error("an event of another topic was shown")
		}
		setInput(t, ctx, "topics", "")
		until(t, ctx, waitFor, "state open", stateIs("open"))
	}

	t.Log("step: the filter hides what does not match")
	{
		post(t, c, svc, `{"kind":"Needle","marker":"m-needle"}`)
		post(t, c, svc, `{"kind":"hay","marker":"m-hay"}`)
		until(t, ctx, waitFor, "both events", shown("m-needle")+" && "+shown("m-hay"))
		do(t, ctx, chromedp.SendKeys(chromedp.ID("filter"), "nEEdle"))
		until(t, ctx, waitFor, "m-hay hidden", "!("+shown("m-hay")+")")
		for _, e := range entries(t, ctx) {
			if want := !strings.Contains(strings.ToLower(e.Text), "needle"); e.Hidden != want {
				t.Errorf("entry %q: hidden %v, want %v", e.Text, e.Hidden, want)
			}
		}
		// New events are filtered as they arrive.
		post(t, c, svc, `{"kind":"hay","marker":"m-hay-2"}`)
		post(t, c, svc, `{"kind":"needle","marker":"m-needle-2"}`)
		until(t, ctx, waitFor, "the new needle", shown("m-needle-2"))
		if es := entries(t, ctx); !es[1].Hidden || !strings.Contains(es[1].Text, "m-hay-2") {
			t.Errorf("second entry: got %+v, want m-hay-2, hidden", es[1])
		}
		setInput(t, ctx, "filter", "")
		until(t, ctx, waitFor, "all shown again", shown("m-hay")+" && "+shown("m-hay-2"))
	}

	t.Log("step: pause holds the list, resume updates it")
	{
		do(t, ctx, chromedp.Click(chromedp.ID("pause")))
		until(t, ctx, waitFor, "pause pressed", `document.querySelector('#pause').getAttribute('aria-pressed') === 'true'`)
		before := entries(t, ctx)
		received := textOf(t, ctx, "received")
		post(t, c, svc, `{"marker":"m-paused"}`)
		// Counting goes on while paused: once the counter moved, the event
		// is in the page, and must not be in the list.
		until(t, ctx, waitFor, "the paused event counted", fmt.Sprintf(`document.querySelector('#received').textContent !== %q`, received))
		if after := entries(t, ctx); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the list changed while paused:\nbefore %+v\nafter  %+v", before, after)
		}
		do(t, ctx, chromedp.Click(chromedp.ID("pause")))
		post(t, c, svc, `{"marker":"m-resumed"}`)
		until(t, ctx, waitFor, "events after resume", shown("m-resumed")+" && "+shown("m-paused"))
	}

	t.Log("step: opening an event pauses the list while events flow, and it stays where it was clicked")
	{
		f := startFlow(svc, 20)
		until(t, ctx, waitFor, "the flow on the page", shown(`"m-flow-5"`))
		do(t, ctx, chromedp.Click(chromedp.CSS("#events .event:nth-child(3) summary")))
		until(t, ctx, waitFor, "paused by the open event", `document.querySelector('#live-state').textContent === 'Paused while you read an event'
			&& document.querySelector('#pause').getAttribute('aria-pressed') === 'true' && document.querySelector('#events details[open]') !== null`)
		const where = `(() => { const r = document.querySelector('#events details[open]');
			return {top: r.getBoundingClientRect().top, bottom: window.innerHeight, text: r.querySelector('summary').textContent,
				first: document.querySelector('#events .event').textContent, rows: document.querySelectorAll('#events .event').length}; })()`
		type position struct {
			Text, First      string
			Top, Bottom, Row float64
			Rows             int
		}
		before, err := chromedp.Run(ctx, chromedp.Evaluate[position](where))
		if err != nil {
			t.Fatal(err)
		}
		// 15 events arrive: the count says so, and nothing moves.
		until(t, ctx, waitFor, "the count of events since", `Number(document.querySelector('#live-detail').textContent.replace(/\D/g, '')) >= 15`)
		after, err := chromedp.Run(ctx, chromedp.Evaluate[position](where))
		if err != nil {
			t.Fatal(err)
		}
		if after != before || after.Top < 0 || after.Top > after.Bottom-20 {
			t.Errorf("the open event moved while paused:\nbefore %+v\nafter  %+v", before, after)
		}
		// Resume: what arrived is shown.
		do(t, ctx, chromedp.Click(chromedp.ID("pause")))
		n := f.stop(t)
		until(t, ctx, waitFor, "live again, with every event", `document.querySelector('#live-state').textContent === 'Live'`+
			" && "+shown(fmt.Sprintf(`"m-flow-%d"`, n-1)))
		// Closing the last open event resumes the list it paused.
		do(t, ctx, chromedp.Click(chromedp.CSS("#events .event:nth-child(2) summary")))
		until(t, ctx, waitFor, "paused", `document.querySelector('#live-state').textContent === 'Paused while you read an event'`)
		do(t, ctx, chromedp.Click(chromedp.CSS("#events .event:nth-child(2) summary")))
		until(t, ctx, waitFor, "live after closing", `document.querySelector('#live-state').textContent === 'Live'`)
	}

	t.Log("step: clear empties the list")
	{
		do(t, ctx, chromedp.Click(chromedp.ID("clear")))
		until(t, ctx, waitFor, "empty list", `document.querySelectorAll('#events .event').length === 0`)
		post(t, c, svc, `{"marker":"m-after-clear"}`)
		until(t, ctx, waitFor, "the next event", shown("m-after-clear"))
	}

	t.Log("step: a server restart: the page reconnects, resumes, is told it missed events, and goes on")
	{
		// The events of the screenshot: before the restart, then after.
		update := os.Getenv("UPDATE_SCREENSHOTS") == "1"
		do(t, ctx, chromedp.Click(chromedp.ID("clear")))
		before, after := playerEvents()
		postAll := func(events []published) {
			for i, e := range events {
				postTo(t, c, svc, e.query, e.body)
				if update {
					time.Sleep(time.Duration(150+100*(i%7)) * time.Millisecond) // an uneven rate, for the chart
				}
			}
		}
		postAll(before)
		until(t, ctx, waitFor, "the events before the restart", fmt.Sprintf(`document.querySelectorAll('#events .event').length === %d`, len(before)))
		addr := svc.addr
		svc.stop(t)
		until(t, ctx, waitFor, "state reconnecting", stateIs("reconnecting"))
		svc = startService(t, addr, nil)
		until(t, ctx, waitFor, "state open again", stateIs("open"))
		// The page resumed with the last id of the old run, which the new
		// run cannot place: it says so.
		until(t, ctx, waitFor, "the gap", `document.querySelector('#events .event').matches('.gap')
			&& document.querySelector('#events .event').textContent.includes('missed events (number unknown)')`)
		postAll(after)
		until(t, ctx, waitFor, "the events from the new server", fmt.Sprintf(`document.querySelectorAll('#events .event').length === %d`, len(before)+1+len(after)))
		screenshot(t, ctx, c, svc, update)
	}
}

// screenshot opens the newest STOP, which pauses the list, posts a few
// events that the pause counts, and saves a PNG: into the test's temporary
// directory, or into docs/images/viewer.png with UPDATE_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, c *http.Client, svc *service, update bool) { //nolint:revive // context-as-argument: t first, as every test helper
	t.Helper()
	do(t, ctx, chromedp.Click(chromedp.JSPath(
		`[...document.querySelectorAll('#events .event')].find((e) => e.textContent.includes('"STOP"')).querySelector('summary')`)))
	until(t, ctx, waitFor, "the tree", `document.querySelector('#events .json .k') !== null`)
	for i := range 10 {
		postTo(t, c, svc, "topic=player&event=heartbeat", heartbeat(sessionC, 1764172950165+int64(i)*250, 30_000+int64(i)*250, 0))
		if update {
			time.Sleep(250 * time.Millisecond)
		}
	}
	until(t, ctx, waitFor, "the count while paused", `document.querySelector('#live-detail').textContent === '10 new events since'`)
	until(t, ctx, waitFor, "the rate", `document.querySelector('#rate').textContent !== '0'`)
	until(t, ctx, waitFor, "the service's count", fmt.Sprintf(`document.querySelector('#accepted').textContent === '%d'`,
		svc.srv.Stats().EventsAccepted))

	do(t, ctx, chromedp.EmulateViewport(1280, 1000))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), "viewer.png")
	if update {
		path = filepath.Join("..", "..", "docs", "images", "viewer.png")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// published is an event as a producer posts it: the query (topic, event
// name) and the body.
type published struct{ query, body string }

// Sessions of the player events.
const (
	sessionA = "8f6c2f0e-3f4b-4f7e-9a51-2c0d1b7e4a90"
	sessionB = "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5"
	sessionC = "c0ffee00-1234-4abc-9def-0123456789ab"
)

// playerEvents are monitoring events as Pillarbox players send them, on the
// player topic with their names, with ad impressions on the ads topic and
// page views on the default topic: a few sessions starting, beating,
// failing and stopping, before and after a restart of the service.
func playerEvents() (before, after []published) {
	const ua = `Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1`
	start := func(session, urn string, ts int64) published {
		return published{"topic=player&event=start", fmt.Sprintf(`{"event_name":"START","session_id":%q,"timestamp":%d,"version":1,"data":{`+
			`"browser":{"user_agent":%q},"device":{"id":"d41d8cd9","model":"iPhone","type":"Phone"},`+
			`"media":{"asset_url":"https://rts-vod-amd.akamaized.net/ww/%s/master.m3u8","id":%q,"origin":"https://www.rts.ch"},`+
			`"player":{"name":"Pillarbox","platform":"Web","version":"1.21.0"},"qoe_timings":{"asset":212,"metadata":154,"total":618}}}`,
			session, ts, ua, strings.TrimPrefix(urn, "urn:rts:video:"), urn)}
	}
	beat := func(session string, ts, position int64, stalls int) published {
		return published{"topic=player&event=heartbeat", heartbeat(session, ts, position, stalls)}
	}
	ad := func(session, id string, ts int64) published {
		return published{"topic=ads&event=impression", fmt.Sprintf(`{"session_id":%q,"timestamp":%d,"ad":{"id":%q,"position":"preroll","duration":15000}}`,
			session, ts, id)}
	}
	page := func(url string, ts int64) published {
		return published{"", fmt.Sprintf(`{"type":"page_view","url":%q,"timestamp":%d}`, url, ts)}
	}
	ts := int64(1764172800123)
	before = []published{
		page("https://www.rts.ch/play/tv", ts-4_000),
		ad(sessionA, "ad-2291", ts-1_500),
		start(sessionA, "urn:rts:video:14900743", ts),
		beat(sessionA, ts+30_000, 30_120, 0),
		start(sessionB, "urn:rts:video:15843219", ts+31_250),
		beat(sessionA, ts+60_000, 60_040, 0),
		beat(sessionB, ts+61_250, 30_010, 1),
		{"topic=player&event=error", fmt.Sprintf(`{"event_name":"ERROR","session_id":%q,"timestamp":%d,"version":1,"data":{`+
			`"message":"The media could not be loaded, either because the server or network failed or because the format is not supported.",`+
			`"name":"MEDIA_ERR_SRC_NOT_SUPPORTED","position":30010,"severity":"Fatal"}}`, sessionB, ts+75_500)},
	}
	after = []published{
		ad(sessionC, "ad-2304", ts+108_500),
		page("https://www.rts.ch/play/tv/live", ts+109_000),
		beat(sessionA, ts+90_000, 90_010, 0),
		{"topic=player&event=stop", fmt.Sprintf(`{"event_name":"STOP","session_id":%q,"timestamp":%d,"version":1,"data":{"position":104220}}`,
			sessionA, ts+104_300)},
	}
	return before, after
}

// TestViewerRendersADeepEvent opens an event nested 10,000 deep, which the
// service accepts (its validator has no depth limit under the body limit):
// the page draws the first levels as a tree and says how many more there
// are, shows them as text on request, and throws nothing (issue 16: it
// used to exceed the call stack).
func TestViewerRendersADeepEvent(t *testing.T) {
	const depth = 10_000
	svc := startService(t, "127.0.0.1:0", nil)
	c := client(t)
	ctx := browsertest.New(t)
	console := browsertest.RecordConsole(t, ctx)
	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state open", stateIs("open"))

	deep := strings.Repeat(`{"a":`, depth-1) + `{"deepest":true}` + strings.Repeat("}", depth-1)
	post(t, c, svc, deep)
	until(t, ctx, waitFor, "the event", shown(`{"a":{"a":{"a":`))
	do(t, ctx, chromedp.Click(chromedp.CSS("#events .event summary")))
	until(t, ctx, waitFor, "the tree", `document.querySelector('#events .json .deeper') !== null`)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => {
		const j = document.querySelector('#events .json');
		let depth = 0;
		for (let e = j.querySelector('.deeper'); e !== j; e = e.parentElement) if (e.classList.contains('node')) depth++;
		return {marker: j.querySelector('.deeper').textContent, depth, keys: j.querySelectorAll('.k').length};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	drawn := int(got["depth"].(float64))
	if want := fmt.Sprintf("… %s more levels", thousands(depth-drawn)); got["marker"] != want || drawn < 10 || drawn > 100 {
		t.Errorf("tree: %v; want some levels drawn and the marker %q", got, want)
	}
	// The rest, as text, on request.
	do(t, ctx, chromedp.Click(chromedp.CSS("#events .json .deeper")))
	until(t, ctx, waitFor, "the rest as text", `(() => { const r = document.querySelector('#events .json .deeper + .raw');
		return r !== null && !r.hidden && r.textContent.endsWith('{"deepest":true}' + '}'.repeat(`+fmt.Sprint(depth-drawn-1)+`)); })()`)
	if errs := console.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// thousands formats n as the page does (en-US): 9,968.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// heartbeat is a player's periodic event.
func heartbeat(session string, ts, position int64, stalls int) string {
	return fmt.Sprintf(`{"event_name":"HEARTBEAT","session_id":%q,"timestamp":%d,"version":1,"data":{`+
		`"bandwidth":48213000,"bitrate":3500000,"buffered_duration":28450,"frame_drops":0,"position":%d,`+
		`"stall":{"count":%d,"duration":%d},"stream_type":"On-demand"}}`, session, ts, position, stalls, 420*stalls)
}

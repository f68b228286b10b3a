package viewer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/browsertest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// termField is the CSS selector of a field ("path" or "value") of the
// filter bar's nth condition (from 1).
func termField(n int, field string) string {
	return fmt.Sprintf("#terms > li:nth-child(%d) .%s", n, field)
}

// typeTerm types a condition into the bar's nth row, replacing what its
// fields held, as a person would.
func typeTerm(tb testing.TB, ctx context.Context, n int, path, value string) { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	retype(tb, ctx, termField(n, "path"), path)
	retype(tb, ctx, termField(n, "value"), value)
}

// retype selects the text of the input matching the CSS selector and types
// text over it.
func retype(tb testing.TB, ctx context.Context, sel, text string) { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).select(), true)`, sel))); err != nil {
		tb.Fatalf("selecting %s: %v", sel, err)
	}
	if text != "" {
		do(tb, ctx, chromedp.SendKeys(chromedp.CSS(sel), text))
	} else {
		do(tb, ctx, chromedp.SendKeys(chromedp.CSS(sel), "\b"))
	}
}

// whereSays is the JavaScript condition "the filter bar's status is in
// state ('off', 'asked', 'applied' or 'refused') and shows text".
func whereSays(state, text string) string {
	return fmt.Sprintf(`document.querySelector('#where-said').dataset.state === %q && document.querySelector('#where-text').textContent === %q`,
		state, text)
}

// briefIs is the JavaScript condition "the filter bar's summary line, shown
// when the bar is folded, reads text".
func briefIs(text string) string {
	return fmt.Sprintf(`document.querySelector('#where-brief').textContent === %q`, text)
}

// openBar unfolds the filter bar, as a click on its summary does.
func openBar(tb testing.TB, ctx context.Context) { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	do(tb, ctx, chromedp.Click(chromedp.CSS("#where-box > summary")))
	until(tb, ctx, waitFor, "the filter bar open", `document.querySelector('#where-box').open && document.querySelector('#where-add').offsetParent !== null`)
}

// markers returns the "marker" field of each event in the page's list,
// newest first ("gap" for a gap).
func markers(tb testing.TB, ctx context.Context) []string { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	var out []string
	for _, e := range entries(tb, ctx) {
		if strings.Contains(e.Class, "gap") {
			out = append(out, "gap")
			continue
		}
		m := markerField.FindStringSubmatch(e.Text)
		if m == nil {
			tb.Fatalf("an entry without a marker: %+v", e)
		}
		out = append(out, m[1])
	}
	return out
}

var markerField = regexp.MustCompile(`"marker":"([^"]*)"`)

// jsonString returns s as a JSON string.
func jsonString(tb testing.TB, s string) string {
	tb.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestViewerFilterBar drives the server-side filter bar in a real browser
// against the real service: conditions typed and applied, only matching
// events shown, the filter as the service understood it, the page's URL
// that carries it and opens the same filtered view in a fresh page, the
// service's 400 for a malformed filter, and a sample that keeps exactly the
// events the service's sampling keeps.
func TestViewerFilterBar(t *testing.T) {
	svc := startService(t, "127.0.0.1:0", nil)
	c := client(t)
	ctx := browsertest.New(t)
	console := browsertest.RecordConsole(t, ctx)
	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state open, no filter", stateIs("open")+" && "+whereSays("off", "")+" && "+briefIs("off")+
		` && !document.querySelector('#where-box').open`)

	// A media id with what a query must escape (& + % # = space), colons
	// and a non-ASCII letter.
	const media = "urn:a&b c+d%/#é?="
	terms := []string{"type:error", "type:warn", "media.id:" + media}
	want, err := filter.Parse(terms, "", filter.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}

	t.Log("step: conditions typed into the bar and applied")
	{
		openBar(t, ctx)
		typeTerm(t, ctx, 1, "type", "error")
		do(t, ctx, chromedp.Click(chromedp.ID("where-add")))
		// Add condition moves the focus to the new row's path: typing goes there.
		until(t, ctx, waitFor, "the new row focused", `document.activeElement === document.querySelector('`+termField(2, "path")+`')`)
		do(t, ctx, chromedp.KeyEvent("type"))
		do(t, ctx, chromedp.SendKeys(chromedp.CSS(termField(2, "value")), "warn"))
		do(t, ctx, chromedp.Click(chromedp.ID("where-add")))
		typeTerm(t, ctx, 3, "media.id", media)
		until(t, ctx, waitFor, "the changes marked as not applied", `!document.querySelector('#where-pending').hidden`)
		listenersBefore := svc.srv.Stats().ListenersTotal
		do(t, ctx, chromedp.Click(chromedp.ID("where-apply")))
		until(t, ctx, waitFor, "the filter as the service understood it", stateIs("open")+" && "+whereSays("applied", want.String())+
			" && "+briefIs(want.String())+` && document.querySelector('#where-pending').hidden`)
		if n := svc.srv.Stats().ListenersTotal - listenersBefore; n != 1 {
			t.Errorf("applying opened %d streams, want 1", n)
		}
		if n := svc.srv.Stats().Filters; n != 1 {
			t.Errorf("the service has %d listener filters, want 1", n)
		}
	}

	t.Log("step: only the matching events are shown")
	body := func(typ, id, marker string) string {
		return fmt.Sprintf(`{"type":%q,"media":{"id":%s},"marker":%q}`, typ, jsonString(t, id), marker)
	}
	{
		do(t, ctx, chromedp.Click(chromedp.ID("clear")))
		for _, b := range []string{
			body("error", media, "match-1"),
			body("error", "urn:a", "not-1"),    // another id
			body("info", media, "not-2"),       // another type
			body("warn", media, "match-2"),     // the other type
			`{"type":"warn","marker":"not-3"}`, // no media
			body("Error", media, "not-4"),      // values are compared exactly
			body("error", media, "match-3"),    // the last: every event before it was delivered
		} {
			post(t, c, svc, b)
		}
		until(t, ctx, waitFor, "the last matching event", shown(`"match-3"`))
		if got, want := markers(t, ctx), []string{"match-3", "match-2", "match-1"}; !slices.Equal(got, want) {
			t.Errorf("events shown: %q, want only the matching ones, %q", got, want)
		}
	}

	t.Log("step: the page's URL carries the filter")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	{
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query()["where"]; !slices.Equal(got, terms) || u.Query().Has("sample") {
			t.Errorf("page URL %q: where %q, want %q and no sample", loc, got, terms)
		}
		if !strings.Contains(u.RawQuery, "where=type:error&where=type:warn&where=media.id:urn:a%26b+c%2Bd%25%2F%23%C3%A9%3F%3D") {
			t.Errorf("page URL %q: want the terms readable (colons as they are) and the rest escaped", loc)
		}
	}

	t.Log("step: the URL opens the same filtered view in a fresh page")
	{
		fresh, closeTab := chromedp.NewContext(ctx) // another tab of the same browser
		t.Cleanup(closeTab)
		do(t, fresh, chromedp.Navigate(loc))
		// Folded, its summary says what the service applies.
		until(t, fresh, waitFor, "the fresh page filtered", stateIs("open")+" && "+whereSays("applied", want.String())+" && "+
			briefIs(want.String())+` && !document.querySelector('#where-box').open`)
		rows, err := chromedp.Run(fresh, chromedp.Evaluate[[][]string](`[...document.querySelectorAll('#terms > li')].map((li) =>
			[li.querySelector('.path').value, li.querySelector('.value').value])`))
		if err != nil {
			t.Fatal(err)
		}
		if want := [][]string{{"type", "error"}, {"type", "warn"}, {"media.id", media}}; fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("the fresh page's conditions: %q, want %q", rows, want)
		}
		// The same filter over the same topics is one filter for the service.
		waitUntil(t, "two listeners, one filter", func() bool { st := svc.srv.Stats(); return st.Listeners == 2 && st.Filters == 1 })
		post(t, c, svc, body("warn", "urn:b", "not-6"))
		post(t, c, svc, body("warn", media, "match-4"))
		until(t, fresh, waitFor, "the matching event in the fresh page", shown(`"match-4"`))
		if got := markers(t, fresh); !slices.Equal(got, []string{"match-4"}) {
			t.Errorf("the fresh page shows %q, want only match-4", got)
		}
		until(t, ctx, waitFor, "the matching event in the first page", shown(`"match-4"`))
		if got := markers(t, ctx); got[0] != "match-4" || slices.Contains(got, "not-6") {
			t.Errorf("the first page shows %q, want match-4 first and not not-6", got)
		}
		closeTab()
	}

	t.Log("step: a malformed filter: the service's 400 and its message, typed and applied with Enter")
	{
		bad := []string{"type..x:error", "type:warn", "media.id:" + media}
		_, err := filter.Parse(bad, "", filter.DefaultLimits)
		if err == nil {
			t.Fatalf("filter.Parse(%q) accepted a malformed path", bad)
		}
		refusedBefore := svc.srv.Stats().TurnedAway[server.TurnAwayInvalid]
		retype(t, ctx, termField(1, "path"), "type..x")
		do(t, ctx, chromedp.SendKeys(chromedp.CSS(termField(1, "value")), "\r")) // Enter applies
		until(t, ctx, waitFor, "the refusal", stateIs("refused")+" && "+whereSays("refused", err.Error())+" && "+briefIs("refused")+" && "+
			problemShows("HTTP 400", "“"+err.Error()+"”", "server-side filter"))
		if n := svc.srv.Stats().TurnedAway[server.TurnAwayInvalid] - refusedBefore; n != 1 {
			t.Errorf("%d requests refused as invalid, want 1", n)
		}
		// Removing the filter gets the whole stream back.
		do(t, ctx, chromedp.Click(chromedp.ID("where-remove")))
		until(t, ctx, waitFor, "open without a filter", stateIs("open")+" && "+whereSays("off", "")+
			` && document.querySelector('#problem').hidden && document.querySelectorAll('#terms > li').length === 1`)
		post(t, c, svc, `{"type":"info","marker":"unfiltered"}`)
		until(t, ctx, waitFor, "any event again", shown(`"unfiltered"`))
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || strings.Contains(loc, "?") {
			t.Errorf("page URL %q (%v): want no filter left in it", loc, err)
		}
	}

	t.Log("step: a sample keeps exactly the events the service's sampling keeps, by id")
	{
		// A listener of everything, to learn each event's id.
		all := listen(t, svc, "")
		do(t, ctx, chromedp.SendKeys(chromedp.ID("sample"), "0.5\r"))
		until(t, ctx, waitFor, "the sample as the service understood it", stateIs("open")+" && "+whereSays("applied", "sample=0.5"))
		do(t, ctx, chromedp.Click(chromedp.ID("clear")))
		const n = 40
		for i := range n {
			post(t, c, svc, fmt.Sprintf(`{"marker":"s-%d"}`, i))
		}
		var kept []string // newest first
		for range n {
			m := all.next(t)
			if filter.Sampled(m.seq, 0.5) {
				kept = append([]string{m.marker}, kept...)
			}
		}
		if len(kept) == 0 || len(kept) == n {
			t.Fatalf("sample 0.5 keeps %d events of %d: the check below would prove nothing", len(kept), n)
		}
		until(t, ctx, waitFor, "the last kept event", shown(fmt.Sprintf("%q", kept[0])))
		if got := markers(t, ctx); !slices.Equal(got, kept) {
			t.Errorf("events shown with sample=0.5: %q, want %q", got, kept)
		}
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasSuffix(loc, "/?sample=0.5") {
			t.Errorf("page URL %q (%v): want the sample in it", loc, err)
		}
	}

	for _, e := range console.Errors() {
		if !strings.Contains(e, "400") { // the browser logs the refused request
			t.Errorf("console error: %s", e)
		}
	}
}

// listener is a plain listener of the service, read by the test.
type listener struct {
	r *sseclient.Reader
}

// listened is an event a listener read: its marker and its id's number.
type listened struct {
	marker string
	seq    uint64
}

// listen opens /events?query on the service and reads its greeting; the
// stream is closed when the test ends.
func listen(tb testing.TB, svc *service, query string) *listener {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, svc.url()+"/events?"+query, nil)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	tr := &http.Transport{DisableCompression: true}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
	})
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /events?%s: %s", query, resp.Status)
	}
	l := &listener{r: sseclient.NewReader(resp.Body)}
	if m, err := l.r.Next(); err != nil || !m.Comment || m.Data != "connected" {
		tb.Fatalf("greeting: %+v, %v", m, err)
	}
	return l
}

// next returns the next event the listener reads (comments skipped), and
// fails the test if none comes within waitFor.
func (l *listener) next(tb testing.TB) listened {
	tb.Helper()
	for {
		type read struct {
			m   sseclient.Message
			err error
		}
		got := make(chan read, 1)
		go func() { // returns at the latest when the test's cleanup closes the stream
			m, err := l.r.Next()
			got <- read{m, err}
		}()
		var r read
		select {
		case r = <-got:
		case <-time.After(waitFor):
			tb.Fatalf("listener: no event within %v", waitFor)
		}
		m, err := r.m, r.err
		if err != nil {
			tb.Fatalf("listener: %v", err)
		}
		if m.Comment {
			continue
		}
		var ev struct{ Marker string }
		if err := json.Unmarshal([]byte(m.Data), &ev); err != nil {
			tb.Fatalf("listener: event %q: %v", m.Data, err)
		}
		_, n, ok := strings.Cut(m.ID, "-")
		seq, err := strconv.ParseUint(n, 10, 64)
		if !ok || err != nil {
			tb.Fatalf("listener: id %q: want r<run>-<n>", m.ID)
		}
		return listened{marker: ev.Marker, seq: seq}
	}
}

// TestViewerFilterBarRequests checks what the filter bar makes the page ask
// /events for, against a stand-in for the service: a URL with a filter opens
// the filtered stream and fills the bar; a colon typed in a path is escaped
// (it is part of a key); rows are removed with the keyboard; topics and the
// token are sent as before, and a change of topics keeps the filter;
// Remove filter drops it. Every change is written back to the page's URL.
func TestViewerFilterBarRequests(t *testing.T) {
	s := startScripted(t)
	ctx := browsertest.New(t)
	console := browsertest.RecordConsole(t, ctx)
	// check fails the test unless the next /events request has these
	// topics, terms and sample, the token and no Last-Event-ID.
	check := func(step string, topics, where []string, sample string) {
		t.Helper()
		r := s.request(t)
		if r.auth != "Bearer s3cret" || r.query.Has("token") || !slices.Equal(r.query["topic"], topics) ||
			!slices.Equal(r.query["where"], where) || r.query.Get("sample") != sample || len(r.query["sample"]) > 1 || r.lastEventID != "" {
			t.Errorf("%s: /events request %+v; want topics %q, where %q, sample %q, the token and no Last-Event-ID", step, r, topics, where, sample)
		}
	}
	location := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	rows := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll('#terms > li')].map((li) =>
			[li.querySelector('.path').value, li.querySelector('.value').value])`))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%q", v)
	}

	t.Log("step: a URL with a filter opens the filtered stream and fills the bar")
	do(t, ctx, chromedp.Navigate(s.url()+`/?token=s3cret&topic=alpha&where=a%5C:b.c:x:y&where=type:error&sample=1e-9`))
	openBar(t, ctx)
	check("opened with a filter", []string{"alpha"}, []string{`a\:b.c:x:y`, "type:error"}, "1e-9")
	until(t, ctx, waitFor, "asked, until the service says", stateIs("open")+" && "+whereSays("asked", `a\:b.c:x:y type:error sample=1e-9`))
	if got, want := rows(), `[["a:b.c" "x:y"] ["type" "error"]]`; got != want {
		t.Errorf("conditions: %s, want %s", got, want)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("sample"))); err != nil || v != "1e-9" {
		t.Errorf("sample field: %q (%v), want 1e-9", v, err)
	}
	s.send(": filter a\\:b.c:x:y type:error sample=1e-09\n\n")
	until(t, ctx, waitFor, "the service's reading", whereSays("applied", `a\:b.c:x:y type:error sample=1e-09`))

	t.Log("step: a colon typed in a path is part of a key; Enter applies")
	do(t, ctx, chromedp.Click(chromedp.ID("where-add")))
	until(t, ctx, waitFor, "the new row focused", `document.activeElement === document.querySelector('`+termField(3, "path")+`')`)
	do(t, ctx, chromedp.KeyEvent("k:1"), chromedp.SendKeys(chromedp.CSS(termField(3, "value")), "v\r"))
	check("a third condition", []string{"alpha"}, []string{`a\:b.c:x:y`, "type:error", `k\:1:v`}, "1e-9")
	until(t, ctx, waitFor, "asked", stateIs("open")+" && "+whereSays("asked", `a\:b.c:x:y type:error k\:1:v sample=1e-9`))
	if loc := location(); !strings.HasSuffix(loc, `/?token=s3cret&topic=alpha&where=a%5C:b.c:x:y&where=type:error&where=k%5C:1:v&sample=1e-9`) {
		t.Errorf("page URL %q: want the filter written back", loc)
	}

	t.Log("step: a row removed with the keyboard; the focus goes to the next row's button")
	do(t, ctx, chromedp.Focus(chromedp.CSS("#terms > li:nth-child(1) .remove")), chromedp.KeyEvent("\r"))
	until(t, ctx, waitFor, "the row removed, not applied yet", `document.querySelectorAll('#terms > li').length === 2
		&& document.activeElement === document.querySelector('#terms > li:nth-child(1) .remove')
		&& document.activeElement.getAttribute('aria-label') === 'Remove condition 1'
		&& !document.querySelector('#where-pending').hidden`)
	if got, want := rows(), `[["type" "error"] ["k:1" "v"]]`; got != want {
		t.Errorf("conditions: %s, want %s", got, want)
	}
	do(t, ctx, chromedp.Focus(chromedp.ID("where-apply")), chromedp.KeyEvent(" "))
	check("a condition removed", []string{"alpha"}, []string{"type:error", `k\:1:v`}, "1e-9")
	until(t, ctx, waitFor, "applied", stateIs("open")+` && document.querySelector('#where-pending').hidden`)

	t.Log("step: a change of topics keeps the filter")
	setInput(t, ctx, "topics", "b, c")
	check("new topics", []string{"b", "c"}, []string{"type:error", `k\:1:v`}, "1e-9")
	until(t, ctx, waitFor, "state open", stateIs("open"))

	t.Log("step: every field of the bar has a label, every row and button a name")
	names, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#where input, #where button, #terms > li')].map((e) =>
		e.labels?.length ? [...e.labels].map((l) => l.textContent.trim()).join('|') : e.getAttribute('aria-label') || e.textContent.trim())`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Condition 1", "Field path", "Value", "Remove condition 1", "Condition 2", "Field path", "Value", "Remove condition 2",
		"Add condition", "Sample (fraction, e.g. 0.01)", "Apply", "Remove filter"}; !slices.Equal(names, want) {
		t.Errorf("names in the filter bar:\n got %q\nwant %q", names, want)
	}

	t.Log("step: Remove filter drops it")
	do(t, ctx, chromedp.Click(chromedp.ID("where-remove")))
	check("filter removed", []string{"b", "c"}, nil, "")
	until(t, ctx, waitFor, "no filter", stateIs("open")+" && "+whereSays("off", ""))
	if loc := location(); !strings.HasSuffix(loc, "/?token=s3cret&topic=b&topic=c") {
		t.Errorf("page URL %q: want the filter gone from it", loc)
	}
	if got := rows(); got != `[["" ""]]` {
		t.Errorf("conditions after Remove filter: %s, want one empty row", got)
	}

	if errs := console.Errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

package viewer_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/chromedp/chromedp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/browsertest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// problemShows is the JavaScript condition "the problem panel is shown and
// its text contains every one of texts".
func problemShows(texts ...string) string {
	var b strings.Builder
	b.WriteString(`!document.querySelector('#problem').hidden`)
	for _, t := range texts {
		fmt.Fprintf(&b, ` && document.querySelector('#problem').textContent.includes(%q)`, t)
	}
	return b.String()
}

// refusedListeners is how many /events requests the service refused for
// want of a listen token.
func refusedListeners(svc *service) uint64 {
	return svc.srv.Stats().TurnedAway[server.TurnAwayUnauthorized]
}

// waitUntil polls cond (on the test's side) until it is true, and fails the
// test after waitFor.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, waitFor, what, cond)
}

// TestViewerNeedsTheListenToken opens the viewer on a service that requires
// a listen token: the page explains what is missing and how to give it,
// shows the service's error, and does not retry in a loop; the retry button,
// the token form, the cookie and ?token= each work.
func TestViewerNeedsTheListenToken(t *testing.T) {
	const tok = "listen-t0ken-for-the-viewer"
	// A short retry hint: a page that retried as EventSource does would
	// make many requests during the wait below.
	svc := startService(t, "127.0.0.1:0", func(c *server.Config) {
		c.ListenTokens = []string{tok}
		c.Retry = 100 * time.Millisecond
	})
	c := client(t)
	ctx := browsertest.New(t)
	console := browsertest.RecordConsole(t, ctx)

	t.Log("step: without a token, the page says what is missing and how to give it")
	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state refused", stateIs("refused"))
	until(t, ctx, waitFor, "the explanation", problemShows("requires a listen token", "missing or invalid listen token",
		svc.url()+"/?token=YOUR_TOKEN", "dispatcher_token", "Next try in"))
	if n := refusedListeners(svc); n != 1 {
		t.Fatalf("%d refused requests, want 1", n)
	}
	// A page that looped would have made a dozen requests by now; a slow
	// machine only makes it fewer.
	time.Sleep(1500 * time.Millisecond)
	if n := refusedListeners(svc); n != 1 {
		t.Errorf("%d refused requests after 1.5 s, want 1: the page retries in a loop", n)
	}
	next, err := chromedp.Run(ctx, chromedp.Evaluate[int](`Number(document.querySelector('#problem-next').textContent.replace(/\D/g, ''))`))
	if err != nil || next < 20 {
		t.Errorf("next automatic try in %d s (%v), want a slow back-off (at least 20 s)", next, err)
	}

	t.Log("step: retry now")
	do(t, ctx, chromedp.Click(chromedp.ID("retry")))
	waitUntil(t, "a second request", func() bool { return refusedListeners(svc) == 2 })
	until(t, ctx, waitFor, "still refused", stateIs("refused")+" && "+problemShows("requires a listen token"))

	t.Log("step: a wrong token typed in the page")
	do(t, ctx, chromedp.SendKeys(chromedp.ID("token"), "not-the-token"), chromedp.Click(chromedp.CSS("#token-form button")))
	waitUntil(t, "a third request", func() bool { return refusedListeners(svc) == 3 })
	until(t, ctx, waitFor, "the token refused", stateIs("refused")+" && "+problemShows("refused this page’s listen token"))

	t.Log("step: the right token typed in the page")
	do(t, ctx, chromedp.SendKeys(chromedp.ID("token"), tok+"\r")) // Enter submits
	until(t, ctx, waitFor, "state open", stateIs("open")+` && document.querySelector('#problem').hidden`)
	post(t, c, svc, `{"marker":"m-typed"}`)
	until(t, ctx, waitFor, "an event", shown("m-typed"))
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil || strings.Contains(loc, tok) {
		t.Errorf("page URL %q (%v): a typed token must not be written into it", loc, err)
	}

	t.Log("step: the dispatcher_token cookie")
	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state refused", stateIs("refused"))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(document.cookie = 'dispatcher_token=%s; path=/; SameSite=Strict', true)`, tok))); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Click(chromedp.ID("retry")))
	until(t, ctx, waitFor, "state open with the cookie", stateIs("open"))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.cookie = 'dispatcher_token=; path=/; max-age=0', true)`)); err != nil {
		t.Fatal(err)
	}

	t.Log("step: ?token= in the page's address")
	do(t, ctx, chromedp.Navigate(svc.url()+"/?token="+tok))
	until(t, ctx, waitFor, "state open with ?token=", stateIs("open"))
	post(t, c, svc, `{"marker":"m-url-token"}`)
	until(t, ctx, waitFor, "an event", shown("m-url-token"))

	t.Log("step: an invalid topic is refused with the service's reason, without a loop")
	before := svc.srv.Stats().TurnedAway[server.TurnAwayInvalid]
	do(t, ctx, chromedp.Navigate(svc.url()+"/?token="+tok+"&topic=no%20spaces"))
	until(t, ctx, waitFor, "state refused", stateIs("refused")+" && "+problemShows("HTTP 400", "topic"))
	if n := svc.srv.Stats().TurnedAway[server.TurnAwayInvalid] - before; n != 1 {
		t.Errorf("%d requests with the invalid topic, want 1", n)
	}

	if errs := console.Errors(); len(errs) > 0 {
		// The refused requests themselves are logged by the browser.
		for _, e := range errs {
			if !strings.Contains(e, "401") && !strings.Contains(e, "400") {
				t.Errorf("console error: %s", e)
			}
		}
	}
}

// TestViewerTurnedAway fills the service's only listener slot: the page
// says it was turned away and why, keeps trying as the service asks, and
// connects once the slot is free.
func TestViewerTurnedAway(t *testing.T) {
	svc := startService(t, "127.0.0.1:0", func(c *server.Config) {
		c.MaxListeners = 1
		c.Retry = 200 * time.Millisecond
	})
	// Another listener takes the slot.
	holdCtx, release := context.WithCancel(context.Background())
	defer release()
	req, err := http.NewRequestWithContext(holdCtx, http.MethodGet, svc.url()+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != ": connected\n" {
		t.Fatalf("the other listener: %q, %v", line, err)
	}

	ctx := browsertest.New(t)
	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "turned away", stateIs("reconnecting")+" && "+problemShows("turned this page away", "too many listeners"))
	waitUntil(t, "tries again", func() bool { return svc.srv.Stats().TurnedAway[server.TurnAwayLimit] >= 2 })

	release()
	waitUntil(t, "the other listener gone", func() bool { return svc.srv.Stats().Listeners == 0 })
	t.Logf("turned away %d times", svc.srv.Stats().TurnedAway[server.TurnAwayLimit])
	until(t, ctx, waitFor, "open once the slot is free", stateIs("open")+` && document.querySelector('#problem').hidden`)
}

// TestViewerResumesAcrossStreamEnds has the service end the page's stream
// every second (-max-stream-age) while events are posted: the page
// reconnects with Last-Event-ID each time and shows every event once, and no
// gap.
func TestViewerResumesAcrossStreamEnds(t *testing.T) {
	svc := startService(t, "127.0.0.1:0", func(c *server.Config) {
		c.MaxStreamAge = time.Second
		c.Retry = 100 * time.Millisecond
	})
	c := client(t)
	ctx := browsertest.New(t)
	do(t, ctx, chromedp.Navigate(svc.url()+"/"))
	until(t, ctx, waitFor, "state open", stateIs("open"))

	// Post until the page has reconnected three times, and at least 20.
	n := 0
	for deadline := time.Now().Add(2 * waitFor); n < 20 || svc.srv.Stats().ListenersTotal < 4; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("the page reconnected %d times in %v, want 3", svc.srv.Stats().ListenersTotal-1, 2*waitFor)
		}
		post(t, c, svc, fmt.Sprintf(`{"marker":"r-%d-"}`, n))
		time.Sleep(50 * time.Millisecond)
	}
	until(t, ctx, waitFor, "every event", shown(fmt.Sprintf(`"r-%d-"`, n-1)))
	counts, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](`(() => {
		const out = {};
		for (const e of document.querySelectorAll('#events .event')) {
			const m = e.textContent.match(/"(r-\d+-)"/);
			const k = m ? m[1] : e.classList.contains('gap') ? 'gap' : 'other';
			out[k] = (out[k] || 0) + 1;
		}
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if k := fmt.Sprintf("r-%d-", i); counts[k] != 1 {
			t.Errorf("event %s shown %d times, want once", k, counts[k])
		}
	}
	if counts["gap"] != 0 || counts["other"] != 0 || len(counts) != n {
		t.Errorf("entries: %v; want the %d events and nothing else", counts, n)
	}
	until(t, ctx, waitFor, "every event counted", fmt.Sprintf(`document.querySelector('#received').textContent === '%d'`, n))
}

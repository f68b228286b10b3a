package viewer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// until waits, in the page, for the JavaScript expression to be true, and
// fails the test after timeout with what the page shows.
func until(tb testing.TB, ctx context.Context, timeout time.Duration, what, expr string) { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		tb.Fatalf("%s: not true within %v (%v); the page shows: %s", what, timeout, err, snapshot(ctx))
	}
}

// snapshot describes the page's state for failure messages.
func snapshot(ctx context.Context) string {
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		state: document.querySelector('#state').textContent,
		events: [...document.querySelectorAll('#events .event')].slice(0, 5).map((e) => (e.hidden ? '(hidden) ' : '') + e.textContent),
		count: document.querySelectorAll('#events .event').length,
		received: document.querySelector('#received').textContent,
	})`))
	if err != nil {
		return fmt.Sprintf("(cannot read the page: %v)", err)
	}
	return s
}

// entry is one item of the page's event list, as a person sees it.
type entry struct {
	Class  string `json:"class"`
	Text   string `json:"text"`  // the row's text (the opened tree's too)
	Topic  string `json:"topic"` // the topic tag's text
	Name   string `json:"name"`  // the badge's text
	Title  string `json:"title"` // the row's tooltip
	Hidden bool   `json:"hidden"`
}

// entries returns the page's event list, newest first.
func entries(tb testing.TB, ctx context.Context) []entry { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	es, err := chromedp.Run(ctx, chromedp.Evaluate[[]entry](`[...document.querySelectorAll('#events > li')].map((e) => ({
		class: e.className, text: e.textContent, hidden: e.hidden,
		topic: e.querySelector('.topic')?.textContent ?? '', name: e.querySelector('.name')?.textContent ?? '',
		title: e.querySelector('summary, .line')?.title ?? ''}))`))
	if err != nil {
		tb.Fatalf("reading the event list: %v", err)
	}
	return es
}

// shown is the JavaScript condition "an entry containing text is in the
// list and visible".
func shown(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#events .event')].some((e) => !e.hidden && e.textContent.includes(%q))`, text)
}

// stateIs is the JavaScript condition "#state reads s".
func stateIs(s string) string {
	return fmt.Sprintf(`document.querySelector('#state').textContent === %q`, s)
}

// textOf returns the text of the element with the id.
func textOf(tb testing.TB, ctx context.Context, id string) string { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
	if err != nil {
		tb.Fatalf("reading #%s: %v", id, err)
	}
	return s
}

// do runs browser actions, failing the test on error.
func do(tb testing.TB, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.Fatalf("browser: %v; the page shows: %s", err, snapshot(ctx))
	}
}

// setInput sets the value of the input with the id and fires its input and
// change events, as a person's typing and leaving the field would.
func setInput(tb testing.TB, ctx context.Context, id, value string) { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		const e = document.getElementById(%q);
		e.value = %q;
		e.dispatchEvent(new Event('input', {bubbles: true}));
		e.dispatchEvent(new Event('change', {bubbles: true}));
		return true;
	})()`, id, value)))
	if err != nil {
		tb.Fatalf("setting #%s: %v", id, err)
	}
}

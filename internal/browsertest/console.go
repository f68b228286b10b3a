package browsertest

import (
	"context"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Console records the console of a tab: calls of the console API, uncaught
// exceptions, and the browser's own log (Content-Security-Policy violations,
// failed loads). Its methods are safe for concurrent use.
type Console struct {
	done chan struct{} // closed when the recording goroutine has returned
	msgs []chromedp.ConsoleMessage
	mu   sync.Mutex
}

// RecordConsole starts recording the console of the tab of ctx (a context
// from [New]) and stops when the test ends. Messages written before the call
// are not seen.
func RecordConsole(tb testing.TB, ctx context.Context) *Console { //nolint:revive // context-as-argument: tb first, as every test helper
	tb.Helper()
	ctx, cancel := context.WithCancel(ctx)
	c := &Console{done: make(chan struct{})}
	messages := chromedp.Console(ctx) // subscribes now
	go func() {
		defer close(c.done)
		for m, err := range messages {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// Messages returns a copy of the messages recorded so far, in order.
func (c *Console) Messages() []chromedp.ConsoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), c.msgs...)
}

// Errors returns the recorded messages of type error or exception, as
// "type: text" strings.
func (c *Console) Errors() []string {
	var out []string
	for _, m := range c.Messages() {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, m.String())
		}
	}
	return out
}

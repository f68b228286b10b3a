package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runNetHTTP is the alternative listener implementation on net/http's client
// (which de-chunks the body itself). It exists to compare costs
// (-client nethttp); the raw implementation is the default.
func (l *listener) runNetHTTP(ctx context.Context, deadline time.Time, release func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.e.target.eventsURL(l.query()), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	var resp *http.Response
	backoff := 5 * time.Millisecond
	for {
		resp, err = l.e.httpClient.Do(req) //nolint:bodyclose // attached below and closed by listener.close
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("connect: %w", err)
		}
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		if backoff < 500*time.Millisecond {
			backoff *= 2
		}
	}
	if !l.attach(resp.Body, nil) {
		return context.Canceled
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /events: HTTP %s", resp.Status)
	}
	l.headDone = true
	l.chunked = false
	l.onConnectedRelease = release
	if !l.e.cfg.WaitGreeting {
		l.markReady()
	}
	return l.readPlain(resp.Body)
}

// readPlain reads with a buffer of its own (TLS connections, or platforms
// without raw socket access).
func (l *listener) readPlain(r io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		if n > 0 {
			l.reads++
			if perr := l.process(buf[:n]); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
		if l.slow && l.isReady {
			return errSlowStop
		}
	}
}

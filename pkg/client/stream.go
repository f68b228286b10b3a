package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// conn is one connection of a subscription: the stream's response, read
// through body, and what releases it.
type conn struct {
	resp   *http.Response
	body   io.Reader
	cancel context.CancelFunc // ends the request, and so the stream
	timer  *time.Timer        // the idle timeout; nil without one
	mu     sync.Mutex         // orders the timer's resets and its stop
	idle   time.Duration
	ended  bool // guarded by mu: close was called
}

// Read reads the stream, pushing the idle timeout further each time bytes
// come.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.resp.Body.Read(p)
	if n > 0 && c.timer != nil {
		c.mu.Lock()
		if !c.ended {
			c.timer.Reset(c.idle)
		}
		c.mu.Unlock()
	}
	return n, err
}

// close releases the connection.
func (c *conn) close() {
	c.mu.Lock()
	c.ended = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	_ = c.resp.Body.Close()
}

// connect opens one stream, resuming after lastID when it is set. It
// returns an *Error for an answer other than 200, an error wrapping
// ErrNotEventStream for a 200 of another type, and Do's error (a *url.Error)
// when the request failed; ctx's cause when ctx is done.
func (s *Subscription) connect(ctx context.Context, lastID string) (*conn, error) {
	cctx, cancel := context.WithCancel(ctx)
	c := &conn{cancel: cancel, idle: s.opts.IdleTimeout}
	var timedOut atomic.Bool
	if c.idle > 0 {
		c.timer = time.AfterFunc(c.idle, func() {
			timedOut.Store(true)
			cancel()
		})
	}
	fail := func(err error) (*conn, error) {
		if c.timer != nil {
			c.timer.Stop()
		}
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case timedOut.Load():
			return nil, &url.Error{Op: "Get", URL: s.url, Err: errNoAnswer}
		}
		return nil, err
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fail(fmt.Errorf("client: %v", err)) //nolint:errorlint // not a *url.Error: nothing was sent
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	setAuth(req.Header, s.client.ListenToken)
	// The service closes a stream's connection when it ends the stream: it
	// must not go back to the pool, where a publish could pick it up.
	req.Close = true
	resp, err := s.http.Do(req)
	if err != nil {
		return fail(err)
	}
	c.resp, c.body = resp, resp.Body
	if c.timer != nil {
		c.body = c
	}
	if resp.StatusCode != http.StatusOK {
		e := responseError(resp)
		_ = resp.Body.Close()
		return fail(e)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		_ = resp.Body.Close()
		return fail(fmt.Errorf("%w: Content-Type %q", ErrNotEventStream, resp.Header.Get("Content-Type")))
	}
	return c, nil
}

// errNoAnswer is why a connection attempt failed when the service did not
// answer within the idle timeout.
var errNoAnswer error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "client: no answer within the idle timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// final reports whether a failed connection attempt must end the
// subscription rather than be tried again.
func final(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return !retryableStatus(e.StatusCode)
	}
	return errors.Is(err, ErrNotEventStream)
}

// run is the subscription's goroutine: it reads the stream cn, and the ones
// after it, until the subscription ends.
func (s *Subscription) run(ctx context.Context, cn *conn) {
	defer close(s.done)
	failures := 0 // connection attempts that failed in a row
	for {
		opened, err := s.read(ctx, cn)
		cn.close()
		if ctx.Err() != nil {
			s.err = context.Cause(ctx)
			return
		}
		if err != nil {
			s.err = err
			return
		}
		if opened {
			failures = 0
		} else {
			failures++
		}
		for {
			if !sleep(ctx, s.delay(failures)) {
				s.err = context.Cause(ctx)
				return
			}
			resumeID := s.resumeID
			if s.opts.DisableResume {
				resumeID = ""
			}
			cn, err = s.connect(ctx, resumeID)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				s.err = context.Cause(ctx)
				return
			}
			if final(err) {
				s.err = err
				return
			}
			var e *Error
			if errors.As(err, &e) {
				s.after = e.RetryAfter
			}
			failures++
		}
	}
}

// read hands the events of one stream over to Next until the stream ends.
// It reports whether the stream opened (the service greeted the listener,
// or sent an event), and returns an error only for one that must end the
// subscription.
func (s *Subscription) read(ctx context.Context, cn *conn) (opened bool, err error) {
	r := NewReader(cn.body)
	// The stream goes on from where the last one left off, as the standard
	// has it: a gap event, which has no id, carries the last one's.
	r.idBuf, r.lastID = s.resumeID, s.resumeID
	defer func() {
		s.resumeID = r.LastEventID()
		if d, ok := r.Retry(); ok {
			s.hint = d
		}
	}()
	for {
		m, err := r.NextMessage()
		if err != nil {
			if errors.Is(err, ErrTooLong) {
				return opened, err
			}
			return opened, nil // the end of the stream, or of the connection
		}
		if m.IsComment {
			// The service's greeting; a listener it turns away gets a
			// comment saying why instead.
			opened = opened || m.Comment == "connected"
			continue
		}
		opened = true
		select {
		case s.events <- m.Event:
		case <-ctx.Done():
			return opened, nil
		}
	}
}

// delay returns how long to wait before the next connection attempt, after
// failures attempts failed in a row: the service's hint (or a Retry-After),
// at least MinDelay, doubled for each failure but the first, at most
// MaxDelay, with jitter that never goes below what the service asked for.
func (s *Subscription) delay(failures int) time.Duration {
	floor := max(s.hint, s.after, s.opts.MinDelay)
	s.after = 0
	return backoff(floor, s.opts.MaxDelay, failures, rand.Int64N)
}

// backoff returns floor doubled failures-1 times, capped at ceil, with up to
// a quarter more of random jitter; capped, the jitter takes off up to a
// quarter instead, never going below floor (unless ceil is lower).
func backoff(floor, ceil time.Duration, failures int, randN func(int64) int64) time.Duration {
	d := floor
	for i := 1; i < failures && d < ceil; i++ {
		d *= 2
	}
	d = min(d, ceil)
	j := time.Duration(randN(int64(d/4) + 1))
	if d+j <= ceil {
		return d + j
	}
	return max(d-j, min(floor, ceil))
}

// sleep waits for d, or until ctx is done: it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

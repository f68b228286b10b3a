package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// streamStub answers GET /events with the streams of bodies, one per
// connection (the last one again for the connections after), and records
// the requests. A body ending in "…" is not ended: the connection then
// stays open, silent, until the client goes.
func streamStub(t *testing.T, bodies ...string) *stub {
	t.Helper()
	var mu sync.Mutex
	var conns int
	return newStub(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		body := bodies[min(conns, len(bodies)-1)]
		conns++
		mu.Unlock()
		if status, rest, ok := strings.Cut(body, " "); ok && len(status) == 3 && status[0] >= '0' && status[0] <= '9' {
			// "401 {...}": an answer other than a stream.
			w.Header().Set("Content-Type", "application/json")
			code := 0
			_, _ = fmt.Sscan(status, &code)
			w.WriteHeader(code)
			_, _ = io.WriteString(w, rest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		hang := strings.HasSuffix(body, "…")
		_, _ = io.WriteString(w, strings.TrimSuffix(body, "…"))
		w.(http.Flusher).Flush()
		if hang {
			<-r.Context().Done()
		}
	})
}

// requests returns the requests the stub received so far.
func (s *stub) all() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.requests...)
}

// TestSubscribeRequests: what a subscription sends: the topics, the listen
// token as a bearer token, the id it resumes from (the option's at first,
// then the last event's), or none without resume.
func TestSubscribeRequests(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		opts      client.SubscribeOptions
		wantFirst string
		wantAfter string
	}{
		{"resume", client.SubscribeOptions{Topics: []string{"a", "b.c"}, LastEventID: "s-3"}, "s-3", "s-5"},
		{"no resume", client.SubscribeOptions{LastEventID: "s-3", DisableResume: true}, "s-3", ""},
		{"from now", client.SubscribeOptions{}, "", "s-5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := streamStub(t, ": connected\nretry: 1\n\nid: s-4\ndata: {}\n\nid: s-5\ndata: {}\n\n", ": connected\n\n…")
			c := newClient(t, s.URL+"/prefix")
			c.ListenToken = "lt"
			c.PublishToken = "pt"
			tc.opts.MinDelay = time.Millisecond
			sub := subscribe(t, c, &tc.opts)
			for _, id := range []string{"s-4", "s-5"} {
				if ev := next(t, sub); ev.ID != id {
					t.Fatalf("got %s, want %s", got(client.Message{Event: ev}), id)
				}
			}
			eventually(t, "a reconnection", func() bool { return len(s.all()) >= 2 })
			reqs := s.all()
			for i, want := range []string{tc.wantFirst, tc.wantAfter} {
				r := reqs[i]
				if r.method != http.MethodGet || r.path != "/prefix/events" ||
					strings.Join(r.query["topic"], ",") != strings.Join(tc.opts.Topics, ",") ||
					r.header.Get("Authorization") != "Bearer lt" || r.header.Get("Accept") != "text/event-stream" ||
					r.header.Get("Last-Event-ID") != want || len(r.header.Values("Last-Event-ID")) > 1 {
					t.Errorf("request %d: got %s %s %v %v, want Last-Event-ID %q", i, r.method, r.path, r.query, r.header, want)
				}
			}
		})
	}
}

// TestSubscribeRefusedLater: a refusal on a reconnection ends the
// subscription, after the events read before it; it is not retried.
func TestSubscribeRefusedLater(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer string
		check        func(error) bool
	}{
		{"unauthorized", `401 {"error":"missing or invalid listen token"}`, func(err error) bool {
			var e *client.Error
			return errors.As(err, &e) && e.StatusCode == 401 && e.Message == "missing or invalid listen token" && errors.Is(err, client.ErrUnauthorized)
		}},
		{"bad request", `400 {"error":"invalid \"topic\" parameter"}`, func(err error) bool { return errors.Is(err, client.ErrInvalid) }},
		{"forbidden", `403 {"error":"origin not allowed"}`, func(err error) bool { return errors.Is(err, client.ErrUnauthorized) }},
		{"gone", `410 {"error":"gone"}`, func(err error) bool {
			var e *client.Error
			return errors.As(err, &e) && e.StatusCode == 410
		}},
		{"not a stream", "200 <html></html>", func(err error) bool { return errors.Is(err, client.ErrNotEventStream) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A 503 in between is retried.
			s := streamStub(t, "retry: 1\n\nid: s-1\ndata: {}\n\n", `503 {"error":"shutting down"}`, tc.answer)
			sub := subscribe(t, newClient(t, s.URL), &client.SubscribeOptions{MinDelay: time.Millisecond})
			if ev := next(t, sub); ev.ID != "s-1" {
				t.Fatalf("got %s", got(client.Message{Event: ev}))
			}
			for range 2 {
				if _, err := sub.Next(testContext(t)); !tc.check(err) {
					t.Fatalf("got %v", err)
				}
			}
			if n := len(s.all()); n != 3 {
				t.Fatalf("%d connections, want 3: the refusal was retried", n)
			}
		})
	}
}

// TestSubscribeNotEventStream: a first answer that is not a stream is
// Subscribe's error.
func TestSubscribeNotEventStream(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>login</html>")
	})
	if sub, err := newClient(t, s.URL).Subscribe(testContext(t), nil); sub != nil || !errors.Is(err, client.ErrNotEventStream) {
		t.Fatalf("got %v, %v; want ErrNotEventStream", sub, err)
	}
}

// TestSubscribeServiceDown: the first connection's failure is Subscribe's
// error, retryable.
func TestSubscribeServiceDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close()
	sub, err := newClient(t, "http://"+ln.Addr().String()).Subscribe(testContext(t), nil)
	if sub != nil || err == nil || !client.IsRetryable(err) {
		t.Fatalf("got %v, %v; want a retryable error", sub, err)
	}
}

// TestSubscribeNoAnswer: with an idle timeout, a service that does not
// answer the first connection makes Subscribe fail with a timeout,
// retryable.
func TestSubscribeNoAnswer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: the kernel does
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newClient(t, "http://"+ln.Addr().String())
	sub, err := c.Subscribe(testContext(t), &client.SubscribeOptions{IdleTimeout: 50 * time.Millisecond})
	var ne net.Error
	if sub != nil || !errors.As(err, &ne) || !ne.Timeout() || !client.IsRetryable(err) {
		t.Fatalf("got %v, %v; want a retryable timeout", sub, err)
	}
}

// TestSubscribeIdleTimeout: a connection silent for longer than the idle
// timeout is taken for dead and replaced, with resume.
func TestSubscribeIdleTimeout(t *testing.T) {
	t.Parallel()
	s := streamStub(t, ": connected\nretry: 1\n\nid: s-1\ndata: {}\n\n…", "id: s-2\ndata: {}\n\n…")
	// The idle timeout bounds the wait for the answer too: long enough for
	// a busy machine to answer, it is the test's duration.
	sub := subscribe(t, newClient(t, s.URL), &client.SubscribeOptions{IdleTimeout: 2 * time.Second, MinDelay: time.Millisecond})
	for _, id := range []string{"s-1", "s-2"} {
		if ev := next(t, sub); ev.ID != id {
			t.Fatalf("got %s, want %s", got(client.Message{Event: ev}), id)
		}
	}
	if r := s.all()[1]; r.header.Get("Last-Event-ID") != "s-1" {
		t.Fatalf("the second connection resumed from %q, want s-1", r.header.Get("Last-Event-ID"))
	}
}

// TestSubscribeTooLong: an event over the limit ends the subscription:
// reading the stream again would meet it again.
func TestSubscribeTooLong(t *testing.T) {
	t.Parallel()
	s := streamStub(t, "retry: 1\n\ndata: "+strings.Repeat("x", 17<<20)+"\n\n")
	sub := subscribe(t, newClient(t, s.URL), &client.SubscribeOptions{MinDelay: time.Millisecond})
	// 17 MiB to read: on a busy machine, with the race detector, that can
	// take longer than the other tests wait.
	ctx, cancel := context.WithTimeout(context.Background(), 8*waitFor)
	defer cancel()
	if _, err := sub.Next(ctx); !errors.Is(err, client.ErrTooLong) {
		t.Fatalf("got %v, want ErrTooLong", err)
	}
	if n := len(s.all()); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// TestClose: Close ends a subscription in every state (streaming with a
// Next blocked, waiting to reconnect, waiting for an answer), and leaves
// nothing behind: no goroutine of the package's, no connection. Not
// parallel: it counts every goroutine of the process.
func TestClose(t *testing.T) {
	svc := startService(t, 0, func(c *server.Config) { c.Heartbeat = 50 * time.Millisecond })
	c := newClient(t, svc.url)

	// Streaming, with a Next blocked in another goroutine.
	sub := subscribe(t, c, nil)
	blocked := make(chan error, 1)
	go func() {
		_, err := sub.Next(context.Background())
		blocked <- err
	}()
	closeWithin(t, sub)
	if err := <-blocked; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("blocked Next: got %v, want ErrClosed", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	eventually(t, "the service sees the listener go", func() bool { return svc.srv.Listeners() == 0 })

	// Waiting to reconnect: the service is gone.
	sub = subscribe(t, c, &client.SubscribeOptions{MinDelay: time.Hour})
	svc.stop()
	closeWithin(t, sub)

	// Waiting for an answer that never comes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	subscribed := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	silent := newClient(t, "http://"+ln.Addr().String())
	go func() {
		_, err := silent.Subscribe(ctx, nil)
		subscribed <- err
	}()
	conn := <-accepted
	cancel()
	if err := <-subscribed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe canceled while waiting: got %v", err)
	}
	if conn != nil {
		_ = conn.Close()
	}

	leftovers(t, "/pkg/client.", "net/http.(*persistConn)")
	goleak.VerifyNone(t, testutil.IgnoreFasthttp...)
}

// closeWithin closes sub, failing the test if Close does not return within
// waitFor.
func closeWithin(t *testing.T, sub *client.Subscription) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatalf("Close still blocked after %v", waitFor)
	}
}

// leftovers fails the test if goroutines whose stack has one of what
// remain after waitFor.
func leftovers(t *testing.T, what ...string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var found []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "testing.tRunner(") {
				continue // a test, paused or running
			}
			for _, w := range what {
				if strings.Contains(g, w) {
					found = append(found, g)
					break
				}
			}
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after %v:\n%s", waitFor, strings.Join(found, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

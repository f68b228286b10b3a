package client_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m)
}

// waitFor bounds every wait for something that should happen promptly. It is
// generous so that a slow machine or -race never makes a test flaky; a test
// that needs it to elapse has failed anyway.
const waitFor = 15 * time.Second

// service is the real service, running in-process on a random loopback port,
// wired as the application wires it (but for the hang-up watcher, which only
// makes it notice departed listeners sooner).
type service struct {
	srv  *server.Server
	ring *fanout.Ring
	url  string
	// stop stops the service; later calls do nothing.
	stop func()
}

// startService starts the service with the test defaults changed by
// configure, and a ring of ringSize frames (0: the default), and stops it
// when the test ends.
func startService(tb testing.TB, ringSize int, configure func(*server.Config)) *service {
	tb.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Retry = 100 * time.Millisecond // listeners come back at once
	cfg.DrainGrace = 0
	if configure != nil {
		configure(&cfg)
	}
	ring := fanout.New(fanout.Options{Size: ringSize, Permanent: []string{server.DefaultTopic}, Matcher: server.FilterMatcher})
	srv, err := server.New(&cfg, server.Deps{Ring: ring})
	if err != nil {
		_ = ring.Close()
		tb.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = ring.Close()
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s := &service{srv: srv, ring: ring, url: "http://" + ln.Addr().String()}
	var stop func()
	var once sync.Once
	s.stop = func() { once.Do(stop) }
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		// The application's order: drain, close the ring, shut down.
		srv.Drain()
		_ = ring.Close()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	}
	tb.Cleanup(s.stop)
	return s
}

// newClient returns a client of the service with an HTTP client of its own,
// whose idle connections are closed when the test ends.
func newClient(tb testing.TB, url string) *client.Client {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	tb.Cleanup(tr.CloseIdleConnections)
	return &client.Client{BaseURL: url, HTTPClient: &http.Client{Transport: tr}}
}

// testContext returns a context that ends when the test does, or after
// waitFor.
func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	tb.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing after waitFor.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	testutil.Eventually(tb, waitFor, what, cond)
}

// rawListener reads GET /events with the Reader alone: what the publish
// tests check events with, independently of Subscription.
type rawListener struct {
	r    *client.Reader
	body io.Closer
}

// listen connects a raw listener with the query (topics) and waits for the
// greeting: from then on it receives every event published.
func listen(tb testing.TB, url, query string) *rawListener {
	tb.Helper()
	req, err := http.NewRequestWithContext(testContext(tb), http.MethodGet, url+"/events?"+query, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
	})
	l := &rawListener{r: client.NewReader(resp.Body), body: resp.Body}
	if m, err := l.r.NextMessage(); err != nil || !m.IsComment || m.Comment != "connected" {
		tb.Fatalf("greeting: got %+v, %v", m, err)
	}
	return l
}

// next returns the next event (the test's context bounds the wait).
func (l *rawListener) next(tb testing.TB) client.Event {
	tb.Helper()
	ev, err := l.r.Next()
	if err != nil {
		tb.Fatalf("listener: %v", err)
	}
	return ev
}

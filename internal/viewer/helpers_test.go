package viewer_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/hangup"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

func TestMain(m *testing.M) {
	testutil.VerifyTestMain(m)
}

// waitFor bounds every wait for something that should happen promptly; it
// is generous so that a loaded machine or -race never makes a test flaky.
const waitFor = 15 * time.Second

// service is the dispatcher running in-process on a loopback port.
type service struct {
	srv     *server.Server
	ring    *fanout.Ring
	watcher *hangup.Watcher // nil where unsupported
	served  chan error
	addr    string // host:port
	down    bool
}

// startService runs the dispatcher on addr ("127.0.0.1:0" for any free
// port) with the defaults changed by configure, and stops it when the test
// ends. It is the one place where these tests build a server. As the
// application does, it watches listeners' connections for hang-ups, so that a
// listener that leaves (the page changing topics, a test's client) is
// released at once, not at the next heartbeat.
func startService(tb testing.TB, addr string, configure func(*server.Config)) *service {
	tb.Helper()
	return startServiceWith(tb, addr, configure, nil)
}

// startServiceWith is startService with tokens, the verifier of signed
// tokens (nil: none), as the application gives it with -jwt-secret and the
// like.
func startServiceWith(tb testing.TB, addr string, configure func(*server.Config), tokens server.TokenVerifier) *service {
	tb.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = addr
	if configure != nil {
		configure(&cfg)
	}
	// As the application's: listeners may have filters (where, sample).
	ring := fanout.New(fanout.Options{Matcher: server.FilterMatcher})
	watcher, err := hangup.New()
	if err != nil {
		watcher = nil // unsupported here: streams notice at their next write
	}
	closeDeps := func() {
		_ = ring.Close()
		if watcher != nil {
			_ = watcher.Close()
		}
	}
	deps := server.Deps{Ring: ring, Log: slog.New(slog.DiscardHandler), Tokens: tokens}
	if watcher != nil { // a nil *hangup.Watcher is no nil Watcher
		deps.Watcher = watcher
	}
	srv, err := server.New(&cfg, deps)
	if err != nil {
		closeDeps()
		tb.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		closeDeps()
		tb.Fatalf("listen on %s: %v", addr, err)
	}
	s := &service{srv: srv, ring: ring, watcher: watcher, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { s.served <- srv.Serve(ln) }()
	tb.Cleanup(func() { s.stop(tb) })
	return s
}

func (s *service) url() string { return "http://" + s.addr }

// stop shuts the service down and waits for Serve to return. It may be
// called more than once.
func (s *service) stop(tb testing.TB) {
	tb.Helper()
	if s.down {
		return
	}
	s.down = true
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// The application's order: drain, close the ring, shut down.
	s.srv.Drain()
	_ = s.ring.Close()
	if err := s.srv.Shutdown(ctx); err != nil {
		tb.Errorf("Shutdown: %v", err)
	}
	if err := <-s.served; err != nil {
		tb.Errorf("Serve: %v", err)
	}
	if s.watcher != nil {
		_ = s.watcher.Close()
	}
}

// client is used for every plain HTTP request of the tests; its idle
// connections are closed when each test ends.
func client(tb testing.TB) *http.Client {
	tb.Helper()
	tr := &http.Transport{DisableCompression: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitFor}
}

// post publishes body and fails the test unless it is accepted.
func post(tb testing.TB, c *http.Client, s *service, body string) {
	tb.Helper()
	postTo(tb, c, s, "", body)
}

// postTo publishes body with the query (topic=...&event=..., or "") and
// fails the test unless it is accepted.
func postTo(tb testing.TB, c *http.Client, s *service, query, body string) {
	tb.Helper()
	if query != "" {
		query = "?" + query
	}
	resp, err := c.Post(s.url()+"/api/events"+query, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("POST %s: %d %s", body, resp.StatusCode, msg)
	}
}

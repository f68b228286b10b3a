package app_test

// Helpers for the scale-out tests: dispatcher instances run in-process with
// app.Run against embedded NATS servers, and requests to them. Listeners are
// in nats_listener_test.go, producers in nats_producer_test.go.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	json "github.com/goccy/go-json"
)

// wait is the deadline of every polling wait.
const wait = 15 * time.Second

// poll calls check until it returns nil, failing t after wait.
func poll(t testing.TB, check func() error) {
	t.Helper()
	testutil.Poll(t, wait, check)
}

// instance is a dispatcher run in-process by app.Run.
type instance struct {
	client *http.Client
	stop   func() error
	logs   *syncBuffer
	name   string
	addr   string
}

// natsArgs are the arguments of every instance: loopback, JSON logs (runApp
// reads the address from them), no IP enrichment (a listener then receives
// exactly the bytes posted), a short shutdown.
func natsArgs(natsURL string, extra ...string) []string {
	return append([]string{
		"-port", "127.0.0.1:0", "-log-format", "json", "-ip-field=",
		"-shutdown-timeout", "5s", "-nats-url", natsURL,
	}, extra...)
}

// startInstance runs a dispatcher sharing events through natsURL, stopped at
// t's cleanup (before the NATS servers started earlier). Its log is shown if
// t fails.
func startInstance(t *testing.T, name, natsURL string, extra ...string) *instance {
	t.Helper()
	addr, stop, logs := runApp(t, natsArgs(natsURL, extra...), noEnv)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	in := &instance{client: &http.Client{Transport: tr}, stop: stop, logs: logs, name: name, addr: addr}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of instance %s:\n%s", name, tail(logs.String(), 60))
		}
	})
	return in
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// answer is an HTTP response, read whole.
type answer struct {
	header http.Header
	body   string
	status int
}

// do sends a request to the instance and reads the whole answer. A transport
// error is returned, not fatal: a NATS outage test expects some.
func (in *instance) do(method, path, body string, header map[string]string) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+in.addr+path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// post POSTs one event and returns the answer, failing t on a transport error.
func (in *instance) post(t testing.TB, body string, header map[string]string) answer {
	t.Helper()
	a, err := in.do(http.MethodPost, "/api/events", body, header)
	if err != nil {
		t.Fatalf("POST to %s: %v", in.name, err)
	}
	return a
}

// mustPost POSTs one event and fails t unless it is answered 200.
func (in *instance) mustPost(t testing.TB, body string) {
	t.Helper()
	if a := in.post(t, body, nil); a.status != http.StatusOK {
		t.Fatalf("POST %s to %s: %d %s", body, in.name, a.status, a.body)
	}
}

// health is what the tests read of GET /health.
type health struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// health reads GET /health, failing t unless it answers 200 with JSON.
func (in *instance) health(t testing.TB) health {
	t.Helper()
	a, err := in.do(http.MethodGet, "/health", "", nil)
	if err != nil {
		t.Fatalf("GET /health of %s: %v", in.name, err)
	}
	var h health
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &h) != nil {
		t.Fatalf("GET /health of %s: %d %s", in.name, a.status, a.body)
	}
	return h
}

// event is the payload of the i-th event of producer p.
func event(p string, i int) string { return fmt.Sprintf(`{"p":%q,"i":%d}`, p, i) }

// events returns the payloads of producer p numbered from..to-1.
func events(p string, from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, event(p, i))
	}
	return out
}

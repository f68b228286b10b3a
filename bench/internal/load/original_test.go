package load

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/original"
)

// startOriginal runs the replica of the original service in-process: it
// sends no byte, not even the response head, before the first event.
func startOriginal(t *testing.T) (*original.Server, string) {
	t.Helper()
	srv := original.New()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return srv, ts.URL
}

func TestRunAgainstOriginal(t *testing.T) {
	srv, url := startOriginal(t)
	// Waiting for a greeting or for the response head cannot work: both only
	// come with the first event, and no event is posted before the listeners
	// are connected.
	for _, greeting := range []bool{true, false} {
		cfg := testConfig(url)
		cfg.WaitGreeting = greeting
		cfg.ConnectTimeout = 300 * time.Millisecond
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Fatalf("greeting=%v: connected to a server that sends nothing", greeting)
		}
	}
	cfg := testConfig(url)
	cfg.ReadyOnSend = true
	cfg.Client = ClientNetHTTP
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("ready-on-send accepted with the nethttp client")
	}
	// Counted as connected once the request is sent; the warm-up lets the
	// server register every listener before the measured phase.
	cfg = testConfig(url)
	cfg.ReadyOnSend = true
	cfg.Warmup = 200 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Load
	if l.Sent != 300 || l.PostErrors != 0 || l.HealthyListeners != 5 {
		t.Fatalf("sent %d (errors %d) to %d listeners", l.Sent, l.PostErrors, l.HealthyListeners)
	}
	if l.Delivered != 1500 || l.Lost != 0 || l.Extra != 0 || !l.Complete || l.PerListenerMin != 300 || l.PerListenerMax != 300 {
		t.Fatalf("delivered %d of %d (lost %d, extra %d, complete %v)", l.Delivered, l.Expected, l.Lost, l.Extra, l.Complete)
	}
	// The order check covers the warm-up too; keys come back sorted and
	// numbers re-encoded, which the frame parser must not mind.
	if o := l.Order; o.Checked < l.Delivered || o.OutOfOrder != 0 || o.Duplicates != 0 || o.SeqGaps != 0 || o.Unparsed != 0 || o.Foreign != 0 {
		t.Fatalf("order check %+v", o)
	}
	if l.E2E.Count < l.Delivered || l.E2E.P50Us <= 0 {
		t.Fatalf("e2e %+v", l.E2E)
	}
	if w := runWarnings(rep); !rep.Params.ReadyOnSend || len(w) != 0 {
		t.Fatalf("params %+v, warnings %q", rep.Params, w)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Listeners() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.Listeners(); n != 0 {
		t.Fatalf("%d listeners still registered", n)
	}
}

func TestRunAgainstOriginalWithSlowListener(t *testing.T) {
	// A listener that stops reading blocks the original's broadcast, hence
	// every POST: the run must still end, its POSTs timing out.
	if testing.Short() {
		t.Skip("short")
	}
	_, url := startOriginal(t)
	cfg := testConfig(url)
	cfg.ReadyOnSend = true
	cfg.Listeners = 4
	cfg.SlowFraction = 0.25
	cfg.Events = 0
	cfg.Duration = 1500 * time.Millisecond
	cfg.Warmup = 100 * time.Millisecond
	cfg.Size = 8192
	cfg.Sample = 8
	cfg.PostTimeout = 300 * time.Millisecond
	cfg.Drain = time.Second
	cfg.DrainQuiet = 300 * time.Millisecond
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Load
	if l.PostErrors == 0 || l.PostStatus["transport-error"] == 0 {
		t.Fatalf("no POST timed out: %+v", l)
	}
	if l.Slow == nil || l.Slow.Listeners != 1 || l.HealthyListeners != 3 {
		t.Fatalf("%+v", l)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("run took %s", d)
	}
	// A POST that timed out may still have reached some listeners before
	// the broadcast blocked: "extra" deliveries are possible, not a fault.
	t.Logf("sent %d, %d POST errors, delivered %d of %d (extra %d)", l.Sent, l.PostErrors, l.Delivered, l.Expected, l.Extra)
}

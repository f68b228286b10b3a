package natsbridge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait is the deadline of every polling wait.
const wait = 15 * time.Second

// testConfig is a configuration for url with short timeouts.
func testConfig(url string) natsbridge.Config {
	return natsbridge.Config{
		URLs:           url,
		Stream:         "TEST_EVENTS",
		Subject:        "test.events",
		PublishTimeout: 2 * time.Second,
		StartTimeout:   5 * time.Second,
	}
}

// testLogger logs to t while the test runs, and nowhere after (the NATS
// client may call back after the test's cleanups began). Set NATSBRIDGE_LOG=1
// to see the logs.
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	if os.Getenv("NATSBRIDGE_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	w := &tWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

var _ io.Writer = (*tWriter)(nil)

// recorder is a Handler that keeps every delivery.
type recorder struct {
	mu  sync.Mutex
	got []natsbridge.Delivery
}

func (r *recorder) handle(d natsbridge.Delivery) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
}

func (r *recorder) deliveries() []natsbridge.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]natsbridge.Delivery(nil), r.got...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// waitLen waits until r holds at least n deliveries.
func (r *recorder) waitLen(t testing.TB, n int) []natsbridge.Delivery {
	t.Helper()
	testutil.Poll(t, wait, func() error {
		if got := r.len(); got < n {
			return fmt.Errorf("%d deliveries, want %d", got, n)
		}
		return nil
	})
	return r.deliveries()
}

// startBridge creates and starts a bridge with a recorder, closed at cleanup.
func startBridge(t testing.TB, cfg natsbridge.Config) (*natsbridge.Bridge, *recorder) {
	t.Helper()
	rec := &recorder{}
	b, err := natsbridge.New(cfg, rec.handle, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { closeBridge(t, b) })
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return b, rec
}

func closeBridge(t testing.TB, b *natsbridge.Bridge) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// waitReady waits until b has joined the stream.
func waitReady(t testing.TB, b *natsbridge.Bridge) {
	t.Helper()
	testutil.Poll(t, wait, func() error {
		if st := b.Status(); st.State != natsbridge.StateReady {
			return fmt.Errorf("state %v (%s)", st.State, st.Reason)
		}
		return nil
	})
}

// testCtx is a context that ends with the test, or after the polling deadline.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// client is a plain JetStream client for arranging and inspecting streams.
func client(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publish publishes m and fails t on error.
func publish(t testing.TB, b *natsbridge.Bridge, m natsbridge.Message) uint64 {
	t.Helper()
	ack, err := b.Publish(testCtx(t), m)
	if err != nil {
		t.Fatalf("Publish(%q): %v", m.Data, err)
	}
	return ack.Seq
}

// msg is a message on topic with a payload naming n.
func msg(topic string, n int) natsbridge.Message {
	return natsbridge.Message{Topic: topic, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// checkConsecutive fails t unless ds have sequences first, first+1, ...
func checkConsecutive(t testing.TB, ds []natsbridge.Delivery, first uint64) {
	t.Helper()
	for i, d := range ds {
		if want := first + uint64(i); d.Seq != want {
			t.Fatalf("delivery %d: seq %d, want %d", i, d.Seq, want)
		}
	}
}

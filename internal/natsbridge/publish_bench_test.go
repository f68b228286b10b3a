package natsbridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

// payload is a typical compact event, 128 bytes.
var payload = []byte(`{"event":"play","user_ip":"203.0.113.7","media":"urn:rts:video:1234567","position":42,"ts":1796119200123,"x":"0123456"}`)

// benchPublish runs b.N publishes spread over n goroutines: each iteration of
// b.Loop hands one publish to the pool, so ns/op is the time per publish with
// n in flight. allocs/op include the embedded server's own.
func benchPublish(b *testing.B, n int, pub func(ctx context.Context) error) {
	jobs := make(chan struct{}, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range jobs {
				if err := pub(context.Background()); err != nil {
					b.Error(err)
				}
			}
		})
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkPublish measures Publish with n concurrent publishers against an
// embedded server (memory storage, one bridge consuming), beside a baseline:
// nats.go's synchronous jetstream Publish from as many goroutines.
func BenchmarkPublish(b *testing.B) {
	s := natstest.RunServer(b)
	cfg := testConfig(s.URL())
	cfg.MaxAge = time.Minute
	bridge, _ := startBridge(b, cfg)
	js := client(b, s.URL())
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("bridge/publishers=%d", n), func(b *testing.B) {
			m := natsbridge.Message{Topic: "bench", Event: "play", Data: payload}
			benchPublish(b, n, func(ctx context.Context) error {
				_, err := bridge.Publish(ctx, m)
				return err
			})
		})
		b.Run(fmt.Sprintf("baseline-sync/publishers=%d", n), func(b *testing.B) {
			benchPublish(b, n, func(ctx context.Context) error {
				_, err := js.Publish(ctx, cfg.Subject+".bench", payload)
				return err
			})
		})
	}
}

// BenchmarkPublishBatch measures PublishBatch of 1,000 messages, atomic and
// pipelined, against an embedded server; one op is one batch.
func BenchmarkPublishBatch(b *testing.B) {
	s := natstest.RunServer(b)
	cfg := testConfig(s.URL())
	cfg.MaxAge = time.Minute
	bridge, _ := startBridge(b, cfg)
	batch := make([]natsbridge.Message, natsbridge.MaxAtomicBatch)
	for i := range batch {
		batch[i] = natsbridge.Message{Topic: "bench", Data: payload}
	}
	for _, mode := range []string{"atomic", "pipelined"} {
		b.Run(mode, func(b *testing.B) {
			bridge.SetAtomicBatches(mode == "atomic")
			b.SetBytes(int64(len(batch) * len(payload)))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if n, err := bridge.PublishBatch(context.Background(), batch); err != nil || n.Acked != len(batch) {
					b.Fatalf("PublishBatch = %+v, %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

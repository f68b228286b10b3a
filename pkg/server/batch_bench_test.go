package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// BenchmarkBatchVsSingle measures publishing 100 events through the real
// HTTP server on loopback, with a keep-alive net/http client: as 100 single
// POSTs (mode=single, the baseline) or as one NDJSON batch of 100 lines
// (mode=batch). One op is 100 events either way; ns/event is the time per
// event. mode=interleaved does both in every op, alternately, and reports
// their ratio (single/batch: how many times cheaper an event is in a batch),
// which stays meaningful on a noisy machine.
//
//	go test -run '^$' -bench BatchVsSingle -benchtime 2s ./pkg/server
func BenchmarkBatchVsSingle(b *testing.B) {
	const events = 100
	event := `{"event":"play","media":"urn:rts:video:1234567","position":42.5}`
	batch := strings.Repeat(event+"\n", events)
	for _, mode := range []string{"single", "batch", "interleaved"} {
		b.Run("mode="+mode, func(b *testing.B) {
			ts := start(b, func(c *server.Config) { c.Heartbeat = time.Hour })
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
			defer client.CloseIdleConnections()
			post := func(contentType, body string) {
				resp, err := client.Post(ts.url+"/api/events", contentType, strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("POST: status %d", resp.StatusCode)
				}
			}
			singles := func() {
				for range events {
					post("application/json", event)
				}
			}
			batched := func() { post(ndjson, batch) }
			b.ReportAllocs()
			var inSingles, inBatches time.Duration
			start := time.Now()
			for b.Loop() {
				switch mode {
				case "single":
					singles()
				case "batch":
					batched()
				case "interleaved":
					t0 := time.Now()
					singles()
					t1 := time.Now()
					batched()
					inSingles += t1.Sub(t0)
					inBatches += time.Since(t1)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			ops := float64(b.N)
			if mode == "interleaved" {
				b.ReportMetric(float64(inSingles.Nanoseconds())/(ops*events), "single-ns/event")
				b.ReportMetric(float64(inBatches.Nanoseconds())/(ops*events), "batch-ns/event")
				b.ReportMetric(float64(inSingles)/float64(inBatches), "single/batch")
				return
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/(ops*events), "ns/event")
			if got := accepted(b, ts); got < uint64(b.N*events) {
				b.Fatalf("events_accepted %d, want at least %d", got, b.N*events)
			}
		})
	}
}

// accepted returns /health's events_accepted.
func accepted(tb testing.TB, ts *testServer) uint64 {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.url+"/health", nil)
	var h struct {
		EventsAccepted uint64 `json:"events_accepted"`
	}
	if err := json.Unmarshal([]byte(ts.do(tb, req).body), &h); err != nil {
		tb.Fatalf("/health: %v", err)
	}
	return h.EventsAccepted
}

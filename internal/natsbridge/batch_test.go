package natsbridge_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

// lines is a batch of n messages with idempotency key key ("" for none).
func lines(key string, n int) []natsbridge.Message {
	msgs := make([]natsbridge.Message, n)
	for i := range msgs {
		msgs[i] = natsbridge.Message{Topic: "batch", Event: "line", Data: fmt.Appendf(nil, `{"line":%d}`, i)}
		if key != "" {
			msgs[i].MsgID = natsbridge.BatchMsgID(key, i)
		}
	}
	return msgs
}

// checkLines fails t unless ds are the lines of a batch, in order, with
// consecutive sequences from first.
func checkLines(t testing.TB, ds []natsbridge.Delivery, n int, first uint64) {
	t.Helper()
	if len(ds) != n {
		t.Fatalf("%d deliveries, want %d", len(ds), n)
	}
	checkConsecutive(t, ds, first)
	for i, d := range ds {
		if want := fmt.Sprintf(`{"line":%d}`, i); string(d.Data) != want || d.Event != "line" || d.Topic != "batch" {
			t.Fatalf("delivery %d = %s %q %q, want %s \"line\" \"batch\"", i, d.Data, d.Event, d.Topic, want)
		}
	}
}

func TestPublishBatch(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"atomic", "pipelined"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			b, rec := startBridge(t, testConfig(s.URL()))
			b.SetAtomicBatches(mode == "atomic")
			if got := b.Status().AtomicBatches; got != (mode == "atomic") {
				t.Fatalf("Status().AtomicBatches = %v", got)
			}
			const n = 2*natsbridge.MaxAtomicBatch + 500 // three chunks
			batch := lines("key", n)
			ack, err := b.PublishBatch(testCtx(t), batch)
			acked := ack.Acked
			if acked != n || err != nil {
				t.Fatalf("PublishBatch = %d, %v, want %d, nil", acked, err, n)
			}
			checkLines(t, rec.waitLen(t, n), n, 1)

			// The same batch again (a client retrying): acknowledged, not stored.
			ack, err = b.PublishBatch(testCtx(t), batch)
			acked = ack.Acked
			if acked != n || ack.Duplicates != n || err != nil {
				t.Fatalf("retried PublishBatch = %d, %v, want %d, nil", acked, err, n)
			}
			publish(t, b, msg("after", 1))
			got := rec.waitLen(t, n+1)
			if len(got) != n+1 || got[n].Seq != n+1 {
				t.Fatalf("after the retry: %d deliveries, last seq %d; want %d, %d", len(got), got[len(got)-1].Seq, n+1, n+1)
			}
			if st := b.Stats(); st.Published != n+1 || st.Duplicates != n {
				t.Fatalf("Stats = %+v, want %d published, %d duplicates", st, n+1, n)
			}
		})
	}
}

// TestPublishBatchRetryAfterPartial completes a batch of which a prefix was
// stored: only the missing lines are stored, in order.
func TestPublishBatchRetryAfterPartial(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, rec := startBridge(t, testConfig(s.URL()))
	const n, stored = 2500, 1200
	batch := lines("k", n)
	if ack, err := b.PublishBatch(testCtx(t), batch[:stored]); ack.Acked != stored || err != nil {
		t.Fatalf("first part: %+v, %v", ack, err)
	}
	if ack, err := b.PublishBatch(testCtx(t), batch); ack.Acked != n || ack.Duplicates != stored || err != nil {
		t.Fatalf("whole batch: %+v, %v", ack, err)
	}
	checkLines(t, rec.waitLen(t, n), n, 1)
}

// TestPublishBatchPartialFailure makes a line of the second chunk too large
// for the server: the first chunk is stored; atomically, nothing of the
// second chunk is; pipelined, the lines before the large one are.
func TestPublishBatchPartialFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode      string
		wantAcked int
	}{
		{"atomic", natsbridge.MaxAtomicBatch},
		{"pipelined", 1500},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t, func(o *natstest.Options) { o.MaxPayload = 4096 })
			b, rec := startBridge(t, testConfig(s.URL()))
			b.SetAtomicBatches(tc.mode == "atomic")
			batch := lines("", 2000)
			batch[1500].Data = bytes.Repeat([]byte("x"), 8192)
			ack, err := b.PublishBatch(testCtx(t), batch)
			acked := ack.Acked
			if acked != tc.wantAcked || !errors.Is(err, natsbridge.ErrRejected) {
				t.Fatalf("PublishBatch = %d, %v, want %d, ErrRejected", acked, err, tc.wantAcked)
			}
			publish(t, b, msg("after", 1))
			got := rec.waitLen(t, tc.wantAcked+1)
			checkLines(t, got[:tc.wantAcked], tc.wantAcked, 1)
			if len(got) != tc.wantAcked+1 || got[tc.wantAcked].Topic != "after" {
				t.Fatalf("%d deliveries, the last on %q; want %d, the last on \"after\"", len(got), got[len(got)-1].Topic, tc.wantAcked+1)
			}
			if st := b.Stats(); st.PublishFailed != uint64(2000-tc.wantAcked) {
				t.Fatalf("Stats.PublishFailed = %d, want %d", st.PublishFailed, 2000-tc.wantAcked)
			}
		})
	}
}

func TestPublishBatchEmpty(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, _ := startBridge(t, testConfig(s.URL()))
	if ack, err := b.PublishBatch(testCtx(t), nil); ack.Acked != 0 || err != nil {
		t.Fatalf("PublishBatch(nil) = %+v, %v", ack, err)
	}
}

// TestPublishBatchPlainMessages publishes messages with no event name and no
// message id (no headers of their own).
func TestPublishBatchPlainMessages(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"atomic", "pipelined"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			b, rec := startBridge(t, testConfig(s.URL()))
			b.SetAtomicBatches(mode == "atomic")
			batch := []natsbridge.Message{msg("", 0), msg("a", 1), msg("", 2)}
			if ack, err := b.PublishBatch(testCtx(t), batch); ack.Acked != 3 || err != nil {
				t.Fatalf("PublishBatch = %+v, %v, want 3, nil", ack, err)
			}
			got := rec.waitLen(t, 3)
			checkConsecutive(t, got, 1)
			for i, d := range got {
				if !bytes.Equal(d.Data, batch[i].Data) || d.Event != "" {
					t.Fatalf("delivery %d = %s %q, want %s with no event", i, d.Data, d.Event, batch[i].Data)
				}
			}
		})
	}
}

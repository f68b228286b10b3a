package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

// readReplay reads r until it has caught up and no message comes within a
// short wait, and returns the sequences read.
func readReplay(t *testing.T, r *natsbridge.Replay, id natsbridge.Identity) []uint64 {
	t.Helper()
	var got []uint64
	for {
		ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
		d, err := r.Next(ctx)
		cancel()
		switch {
		case errors.Is(err, natsbridge.ErrCaughtUp):
			continue
		case errors.Is(err, context.DeadlineExceeded) && r.CaughtUp():
			return got
		case err != nil:
			t.Fatalf("Next after %v: %v", got, err)
		}
		if want := fmt.Sprintf(`{"n":%d}`, d.Seq-1); string(d.Data) != want || !d.Identity.Equal(id) {
			t.Fatalf("seq %d: %s %v, want %s", d.Seq, d.Data, d.Identity, want)
		}
		got = append(got, d.Seq)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, rec := startBridge(t, testConfig(s.URL()))
	topics := []string{"a", "b", "c.d"}
	for i := range 30 { // seq i+1 is on topics[i%3]
		publish(t, b, msg(topics[i%3], i))
	}
	rec.waitLen(t, 30)
	id := b.Status().Identity
	// Sequences 1-5 leave the stream.
	stream, err := client(t, s.URL()).Stream(testCtx(t), "TEST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(testCtx(t), jetstream.WithPurgeSequence(6)); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		from     uint64
		topics   []string
		want     []uint64
		wantGone uint64
	}{
		{"from a sequence", 25, nil, []uint64{25, 26, 27, 28, 29, 30}, 0},
		{"one topic", 20, []string{"b"}, []uint64{20, 23, 26, 29}, 0},
		{"two topics", 24, []string{"a", "c.d"}, []uint64{24, 25, 27, 28, 30}, 0},
		{"topic with nothing", 10, []string{"zzz"}, nil, 0},
		{"pattern", 24, []string{"c.*"}, []uint64{24, 27, 30}, 0},
		{"tail pattern and a topic it covers", 24, []string{"a", ">"}, seqs(24, 30), 0},
		// Filter subjects that overlap: each message once.
		{"overlapping patterns", 24, []string{"c.*", "*.d", "a"}, []uint64{24, 25, 27, 28, 30}, 0},
		{"overlapping patterns, last ones not theirs", 20, []string{"b.*", "*.b", "b"}, []uint64{20, 23, 26, 29}, 0},
		{"partly gone", 3, nil, seqs(6, 30), 3},
		{"from zero", 0, nil, seqs(6, 30), 5},
		{"at the end", 31, nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := b.OpenReplay(testCtx(t), id, tc.from, tc.topics)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := readReplay(t, r, id); r.Gone() != tc.wantGone || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("replay from %d of %v = %v, gone %d; want %v, gone %d",
					tc.from, tc.topics, got, r.Gone(), tc.want, tc.wantGone)
			}
		})
	}

	t.Run("goes on with new messages", func(t *testing.T) {
		r, err := b.OpenReplay(testCtx(t), id, 29, []string{"b", "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := readReplay(t, r, id); fmt.Sprint(got) != "[29]" {
			t.Fatalf("replay from 29 = %v", got)
		}
		publish(t, b, msg("c.d", 30)) // seq 31: not for this replay
		publish(t, b, msg("b", 31))   // seq 32
		if d, err := r.Next(testCtx(t)); err != nil || d.Seq != 32 {
			t.Fatalf("Next after new messages: %d, %v; want 32", d.Seq, err)
		}
	})
	t.Run("ahead of the stream", func(t *testing.T) {
		if _, err := b.OpenReplay(testCtx(t), id, 40, nil); !errors.Is(err, natsbridge.ErrAhead) {
			t.Fatalf("OpenReplay after a sequence never given out: %v, want ErrAhead", err)
		}
	})
	t.Run("other incarnation", func(t *testing.T) {
		old := id
		old.Created = old.Created.Add(-time.Nanosecond)
		if _, err := b.OpenReplay(testCtx(t), old, 10, nil); !errors.Is(err, natsbridge.ErrStreamChanged) {
			t.Fatalf("OpenReplay with another identity: %v, want ErrStreamChanged", err)
		}
	})
	t.Run("invalid topic", func(t *testing.T) {
		if _, err := b.OpenReplay(testCtx(t), id, 10, []string{"a b"}); !errors.Is(err, natsbridge.ErrInvalidMessage) {
			t.Fatalf("OpenReplay with an invalid topic: %v, want ErrInvalidMessage", err)
		}
	})
	t.Run("slots are released", func(t *testing.T) {
		for range 10 { // more than the bridge's four slots
			r, err := b.OpenReplay(testCtx(t), id, 28, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			r.Close() // idempotent
		}
	})
	// The live consumer was not disturbed.
	publish(t, b, msg("a", 32))
	if got := rec.waitLen(t, 33); got[32].Seq != 33 {
		t.Fatalf("live delivery after replays: seq %d, want 33", got[32].Seq)
	}
	if st := b.Stats(); st.Replayed == 0 {
		t.Fatalf("Stats.Replayed = 0")
	}
}

// seqs returns from, from+1, ..., to.
func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestReplayStartsOnceWhateverTheDeadline: a caller that polls Next with
// deadlines shorter than the server takes to create the replay's consumer
// (a busy machine) gets its context's error, and the replay one consumer,
// not one per call: a stream holds at most 1,000.
func TestReplayStartsOnceWhateverTheDeadline(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, rec := startBridge(t, testConfig(s.URL()))
	for i := range 5 {
		publish(t, b, msg("a", i))
	}
	rec.waitLen(t, 5)
	id := b.Status().Identity
	r, err := b.OpenReplay(testCtx(t), id, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		if _, err := r.Next(done); err == nil {
			break // a message was there at once
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next with a context done: %v", err)
		}
	}
	stream, err := client(t, s.URL()).Stream(testCtx(t), "TEST_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	replays := 0
	names := stream.ConsumerNames(testCtx(t))
	for name := range names.Name() {
		if strings.HasPrefix(name, "pillarbox_replay_") {
			replays++
		}
	}
	if err := names.Err(); err != nil || replays != 1 {
		t.Fatalf("%d replay consumers after 20 calls of Next (%v), want 1", replays, err)
	}
}

package natsbridge_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

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

	seqs := func(from, to uint64, topics []string) ([]uint64, uint64, error) {
		var got []uint64
		gone, err := b.Replay(testCtx(t), id, from, to, topics, func(d natsbridge.Delivery) error {
			if want := fmt.Sprintf(`{"n":%d}`, d.Seq-1); string(d.Data) != want || !d.Identity.Equal(id) {
				return fmt.Errorf("seq %d: %s %v, want %s", d.Seq, d.Data, d.Identity, want)
			}
			got = append(got, d.Seq)
			return nil
		})
		return got, gone, err
	}
	for _, tc := range []struct {
		name     string
		from, to uint64
		topics   []string
		want     []uint64
		wantGone uint64
	}{
		{"range", 10, 15, nil, []uint64{10, 11, 12, 13, 14}, 0},
		{"one topic", 10, 20, []string{"b"}, []uint64{11, 14, 17}, 0},
		{"two topics", 10, 20, []string{"a", "c.d"}, []uint64{10, 12, 13, 15, 16, 18, 19}, 0},
		{"topic with nothing", 10, 20, []string{"zzz"}, nil, 0},
		{"partly gone", 3, 8, nil, []uint64{6, 7}, 3},
		{"from zero", 0, 7, nil, []uint64{6}, 5},
		{"all gone", 2, 5, nil, nil, 3},
		{"beyond the last", 29, 100, nil, []uint64{29, 30}, 0},
		{"empty range", 12, 12, nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gone, err := seqs(tc.from, tc.to, tc.topics)
			if err != nil || gone != tc.wantGone || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("Replay(%d, %d, %v) = %v, gone %d, %v; want %v, gone %d",
					tc.from, tc.to, tc.topics, got, gone, err, tc.want, tc.wantGone)
			}
		})
	}

	t.Run("first sequence", func(t *testing.T) {
		if first, err := b.FirstSeq(testCtx(t), id); err != nil || first != 6 {
			t.Fatalf("FirstSeq = %d, %v; want 6", first, err)
		}
		old := id
		old.Created = old.Created.Add(-time.Nanosecond)
		if _, err := b.FirstSeq(testCtx(t), old); !errors.Is(err, natsbridge.ErrStreamChanged) {
			t.Fatalf("FirstSeq with another identity: %v, want ErrStreamChanged", err)
		}
	})
	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("enough")
		calls := 0
		_, err := b.Replay(testCtx(t), id, 10, 20, nil, func(natsbridge.Delivery) error {
			calls++
			if calls == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 2 {
			t.Fatalf("Replay = %v after %d calls, want the callback's error after 2", err, calls)
		}
	})
	t.Run("other incarnation", func(t *testing.T) {
		old := id
		old.Created = old.Created.Add(-time.Nanosecond)
		if _, err := b.Replay(testCtx(t), old, 10, 20, nil, func(natsbridge.Delivery) error { return nil }); !errors.Is(err, natsbridge.ErrStreamChanged) {
			t.Fatalf("Replay with another identity: %v, want ErrStreamChanged", err)
		}
	})
	t.Run("invalid topic", func(t *testing.T) {
		if _, err := b.Replay(testCtx(t), id, 10, 20, []string{"a b"}, nil); !errors.Is(err, natsbridge.ErrInvalidMessage) {
			t.Fatalf("Replay with an invalid topic: %v, want ErrInvalidMessage", err)
		}
	})
	// The live consumer was not disturbed.
	publish(t, b, msg("a", 30))
	if got := rec.waitLen(t, 31); got[30].Seq != 31 {
		t.Fatalf("live delivery after replays: seq %d, want 31", got[30].Seq)
	}
	if st := b.Stats(); st.Replayed == 0 {
		t.Fatalf("Stats.Replayed = 0")
	}
}

package fanout_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// TestTopicFiltering: a subscriber to some topics receives exactly their
// frames and broadcast frames, in sequence order; a subscriber to every topic
// receives everything.
func TestTopicFiltering(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 64})
	all := subscribe(t, r)
	a := subscribe(t, r, "a")
	ab := subscribe(t, r, "a", "b", "a") // a topic named twice counts once
	c := subscribe(t, r, "c")

	for i, topic := range []string{"a", "b", "c", "", "b", "a"} {
		if _, err := r.Publish(topic, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		sub  *fanout.Subscriber
		want []string
	}{
		{"all", all, []string{"0", "1", "2", "3", "4", "5"}},
		{"a", a, []string{"0", "3", "5"}},
		{"a+b", ab, []string{"0", "1", "3", "4", "5"}},
		{"c", c, []string{"2", "3"}},
	} {
		got, missed := readAll(tc.sub)
		if missed != 0 || !equal(got, tc.want) {
			t.Errorf("%s: got %v (missed %d), want %v", tc.name, got, missed, tc.want)
		}
	}
	if got := r.Topics(); got != 3 {
		t.Errorf("Topics: got %d, want 3", got)
	}
}

// TestQuietTopicIsNotWokenNorTold: frames of another topic, even enough to
// lap the ring many times, neither wake a subscriber to a quiet topic nor
// make it report a miss; its own next frame arrives intact.
func TestQuietTopicIsNotWokenNorTold(t *testing.T) {
	t.Parallel()
	const size = 16
	r := newRing(t, fanout.Options{Size: size, Shards: 2})
	quiet := subscribe(t, r, "quiet")
	publishOn(t, r, "quiet", 1, 1)
	if got, _ := readAll(quiet); !equal(got, []string{"1"}) {
		t.Fatalf("first quiet frame: %v", got)
	}

	ch := waitResult(context.Background(), quiet, time.Hour)
	eventually(t, "the quiet subscriber asleep", func() bool { return r.TopicSleepers("quiet") == 1 })
	publishOn(t, r, "busy", 2, 10*size)
	select {
	case err := <-ch:
		t.Fatalf("woken by the busy topic's frames: Wait returned %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if n := r.TopicSleepers("quiet"); n != 1 {
		t.Fatalf("quiet sleepers after the busy frames: %d, want 1", n)
	}
	publishOn(t, r, "quiet", 1000, 1)
	expectWait(t, ch, nil) // its own topic's frame wakes it

	got, missed := readAll(quiet)
	if missed != 0 || !equal(got, []string{"1000"}) {
		t.Fatalf("after the busy topic lapped the ring: got %v, missed %d; want [1000], 0", got, missed)
	}
}

// TestTopicMissedCountIsExact: a subscriber to some topics that falls behind
// is told exactly how many frames of its topics it lost, at the right place
// in its stream, never counting other topics' frames.
func TestTopicMissedCountIsExact(t *testing.T) {
	t.Parallel()
	const size = 8
	r := newRing(t, fanout.Options{Size: size})
	sub := subscribe(t, r, "a", "b")
	publishOn(t, r, "a", 1, 1)
	publishOn(t, r, "b", 2, 1)
	if got, _ := readAll(sub); !equal(got, []string{"1", "2"}) {
		t.Fatalf("first frames: %v", got)
	}
	// 20 frames alternate a, c, b, c...: the ring holds the last 8, so the
	// subscriber loses a's and b's frames among the first 12.
	for i := range 20 {
		topic := []string{"a", "c", "b", "c"}[i%4]
		publishOn(t, r, topic, 100+i, 1)
	}
	batch := make([]*fanout.Frame, 0, 16)
	var events []string
	for {
		var missed uint64
		batch, missed = sub.Read(batch[:0])
		if missed > 0 {
			events = append(events, fmt.Sprintf("missed %d", missed))
		}
		if len(batch) == 0 && missed == 0 {
			break
		}
		for _, f := range batch {
			events = append(events, string(f.Bytes()))
		}
	}
	// Held: 112..119, of which a: 112, 116 and b: 114, 118. Lost: a 100,
	// 104, 108 (3) and b 102, 106, 110 (3), each told before its topic's
	// next frame.
	want := []string{"missed 3", "112", "missed 3", "114", "116", "118"}
	if !equal(events, want) {
		t.Fatalf("got %v, want %v", events, want)
	}
	if sub.Missed() != 6 {
		t.Errorf("Missed: got %d, want 6", sub.Missed())
	}
}

// TestTopicOrderAndNoLossUnderConcurrency: concurrent publishers on several
// topics; subscribers to one, several and every topic get exactly their
// frames, each publisher's in order, with nothing missed.
func TestTopicOrderAndNoLossUnderConcurrency(t *testing.T) {
	t.Parallel()
	const (
		publishers  = 6
		perProducer = 1500
	)
	topics := []string{"x", "y", "z"}
	r := newRing(t, fanout.Options{Size: publishers * perProducer, Shards: 4})
	type result struct {
		name string
		err  error
	}
	cases := [][]string{nil, {"x"}, {"y", "z"}, {"x", "y", "z"}}
	results := make(chan result, len(cases))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, want := range cases {
		sub := subscribe(t, r, want...)
		go func() {
			results <- result{fmt.Sprint(want), consumeTopics(ctx, sub, want, topics, publishers, perProducer)}
		}()
	}
	// (The subscribers are closed by the cleanups, after their results.)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			topic := topics[p%len(topics)]
			for n := range perProducer {
				b := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(p)), uint32(n))
				if _, err := r.Publish(topic, b); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for range cases {
		if res := <-results; res.err != nil {
			t.Errorf("subscriber to %s: %v", res.name, res.err)
		}
	}
}

// consumeTopics reads until it has every frame of the topics it wants,
// checking per-publisher order and that no frame of another topic arrives.
func consumeTopics(ctx context.Context, sub *fanout.Subscriber, want, topics []string, publishers, perProducer int) error {
	wanted := map[string]bool{}
	for _, tp := range want {
		wanted[tp] = true
	}
	expected := 0
	for p := range publishers {
		if len(want) == 0 || wanted[topics[p%len(topics)]] {
			expected += perProducer
		}
	}
	nextOf := make([]uint32, publishers)
	batch := make([]*fanout.Frame, 0, 64)
	lastSeq := uint64(0)
	for count := 0; count < expected; {
		var missed uint64
		batch, missed = sub.Read(batch[:0])
		if missed != 0 {
			return fmt.Errorf("missed %d frames", missed)
		}
		for _, f := range batch {
			if f.Seq() <= lastSeq {
				return fmt.Errorf("seq %d after %d", f.Seq(), lastSeq)
			}
			lastSeq = f.Seq()
			p := binary.BigEndian.Uint32(f.Bytes()[:4])
			n := binary.BigEndian.Uint32(f.Bytes()[4:])
			if tp := topics[int(p)%len(topics)]; len(want) > 0 && !wanted[tp] {
				return fmt.Errorf("got a frame of topic %s", tp)
			}
			if f.Topic().Name() != topics[int(p)%len(topics)] {
				return fmt.Errorf("frame of publisher %d on topic %q", p, f.Topic().Name())
			}
			if n != nextOf[p] {
				return fmt.Errorf("publisher %d: frame %d, want %d", p, n, nextOf[p])
			}
			nextOf[p]++
			count++
		}
		if len(batch) == 0 {
			if err := sub.Wait(ctx, 0); err != nil {
				return fmt.Errorf("Wait after %d of %d frames: %w", count, expected, err)
			}
		}
	}
	return nil
}

// TestReserveCommitOutOfOrder: a frame committed before an earlier
// reservation is not visible until that one is committed; then both are, in
// sequence order, and the bytes can carry the reserved number. The keys are
// the publishers' own and, as Message.Key requires, increase with the
// sequence numbers, whatever the order of the commits.
func TestReserveCommitOutOfOrder(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	sub := subscribe(t, r, "t")
	first, err := r.Reserve("t", 1)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.Reserve("t", 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Commit(second, fanout.Message{Data: []byte(fmt.Sprint("id ", second.Seq())), Key: 42})
	if got, _ := readAll(sub); len(got) != 0 {
		t.Fatalf("visible before the first reservation was committed: %v", got)
	}
	ch := waitResult(context.Background(), sub, time.Hour)
	r.Commit(first, fanout.Message{Data: []byte(fmt.Sprint("id ", first.Seq())), Key: 41})
	expectWait(t, ch, nil)
	batch, _ := sub.Read(make([]*fanout.Frame, 0, 4))
	if len(batch) != 2 {
		t.Fatalf("got %d frames, want 2", len(batch))
	}
	for i, want := range []struct {
		data     string
		seq, key uint64
	}{{"id 1", 1, 41}, {"id 2", 2, 42}} {
		if f := batch[i]; string(f.Bytes()) != want.data || f.Seq() != want.seq || f.Key() != want.key {
			t.Errorf("frame %d: %q seq %d key %d, want %+v", i, f.Bytes(), f.Seq(), f.Key(), want)
		}
	}
}

// TestBroadcastWakesTopicSubscribers: a broadcast frame wakes and reaches a
// subscriber asleep on a topic.
func TestBroadcastWakesTopicSubscribers(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8, Shards: 2})
	sub := subscribe(t, r, "t")
	ch := waitResult(context.Background(), sub, time.Hour)
	time.Sleep(10 * time.Millisecond) // let it fall asleep; correctness does not depend on it
	publishN(t, r, 7, 1)
	expectWait(t, ch, nil)
	if got, _ := readAll(sub); !equal(got, []string{"7"}) {
		t.Fatalf("got %v", got)
	}
}

// TestTopicLimitAndRelease: a topic with neither subscribers nor frames for a
// while is released; its frames still reach subscribers to its name.
func TestTopicLimitAndRelease(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 16, MaxTopics: 2, TopicIdle: 40 * time.Millisecond})
	held := subscribe(t, r, "held")
	publishOn(t, r, "gone", 1, 1)
	eventually(t, "the idle topic released", func() bool { return r.Topics() == 1 })
	// "held" has a subscriber, so "gone" was the one released; a new
	// topic of that name finds its frames by name.
	late, _, err := r.SubscribeAfter(0, "gone")
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if got, _ := readAll(late); !equal(got, []string{"1"}) {
		t.Errorf("frames of the released topic, by name: %v", got)
	}
	if got, _ := readAll(held); len(got) != 0 {
		t.Errorf("held got %v", got)
	}
}

// TestFullTableMakesRoom: when MaxTopics are alive, a new topic takes the
// place of one without subscribers (one that had no frame lately first); it
// is refused only when every topic has a subscriber. Permanent topics are
// always there and not counted.
func TestFullTableMakesRoom(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 64, MaxTopics: 3, Permanent: []string{"default"}})
	held := subscribe(t, r, "held")
	publishOn(t, r, "old", 1, 1)
	publishOn(t, r, "recent", 2, 1)
	if got := r.Topics(); got != 4 {
		t.Fatalf("Topics: %d, want 4 (3 and the permanent one)", got)
	}
	// The table is full; "recent" keeps being used, "old" does not.
	publishOn(t, r, "recent", 3, 1)
	publishOn(t, r, "new1", 4, 1)
	publishOn(t, r, "recent", 5, 1)
	if got := r.Topics(); got != 4 {
		t.Fatalf("Topics after making room: %d, want 4", got)
	}
	// Producers alone cannot fill the table against listeners: a listener's
	// new topic, and publishing to the permanent topic, always work.
	for i := range 20 {
		publishOn(t, r, fmt.Sprintf("flood%d", i), 10+i, 1)
	}
	late := subscribe(t, r, "late")
	publishOn(t, r, "default", 100, 1)
	publishOn(t, r, "late", 101, 1)
	if got, missed := readAll(late); !equal(got, []string{"101"}) || missed != 0 {
		t.Fatalf("late listener: %v, missed %d", got, missed)
	}
	if got, missed := readAll(held); len(got) != 0 || missed != 0 {
		t.Fatalf("held listener: %v, missed %d", got, missed)
	}
	// Now every counted topic has a subscriber but one; fill that one too.
	third := subscribe(t, r, "third")
	defer third.Close()
	if _, err := r.Publish("another", []byte("x")); !errors.Is(err, fanout.ErrTooManyTopics) {
		t.Fatalf("a new topic with every topic listened to: got %v, want ErrTooManyTopics", err)
	}
	if _, err := r.Subscribe("another"); !errors.Is(err, fanout.ErrTooManyTopics) {
		t.Fatalf("subscribing to a new topic with every topic listened to: got %v, want ErrTooManyTopics", err)
	}
	if _, err := r.Publish("default", []byte("x")); err != nil {
		t.Fatalf("the permanent topic: %v", err)
	}
	// A topic whose listener leaves makes room again.
	_ = late.Close()
	if _, err := r.Publish("another", []byte("x")); err != nil {
		t.Fatalf("after a listener left: %v", err)
	}
}

// TestReserveBatchIsContiguous: a reservation of several frames gets
// consecutive sequence numbers, whatever other publishers do meanwhile, and
// its frames reach subscribers together, in order.
func TestReserveBatchIsContiguous(t *testing.T) {
	t.Parallel()
	const (
		publishers = 4
		batches    = 200
		perBatch   = 5
	)
	r := newRing(t, fanout.Options{Size: publishers * batches * perBatch})
	sub := subscribe(t, r, "t")
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for b := range batches {
				res, err := r.Reserve("t", perBatch)
				if err != nil {
					t.Errorf("Reserve: %v", err)
					return
				}
				msgs := make([]fanout.Message, perBatch)
				for i := range msgs {
					msgs[i].Data = fmt.Appendf(nil, "%d/%d/%d", p, b, i)
				}
				r.Commit(res, msgs...)
			}
		})
	}
	wg.Wait()
	got, missed := readAll(sub)
	if missed != 0 || len(got) != publishers*batches*perBatch {
		t.Fatalf("got %d frames, missed %d", len(got), missed)
	}
	for i := 0; i < len(got); i += perBatch {
		var p, b int
		if _, err := fmt.Sscanf(got[i], "%d/%d/0", &p, &b); err != nil {
			t.Fatalf("frame %d: %q does not start a batch", i, got[i])
		}
		for k := 1; k < perBatch; k++ {
			if want := fmt.Sprintf("%d/%d/%d", p, b, k); got[i+k] != want {
				t.Fatalf("frame %d: %q, want %q (batches interleaved)", i+k, got[i+k], want)
			}
		}
	}
}

package fanout_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// commitKey commits res, one frame, with key and its key as bytes.
func commitKey(r *fanout.Ring, res fanout.Reservation, key uint64) {
	r.Commit(res, fanout.Message{Data: []byte(fmt.Sprint(key)), Key: key})
}

// TestAbortAmidCommits: a reservation given up between two others, committed
// out of order, holds subscribers back until it is aborted, then lets them
// read on, waking those asleep, with no miss for anyone; a subscriber to the
// aborted frame's topic is still told of the topic's later misses.
func TestAbortAmidCommits(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	all, onT, onU := subscribe(t, r), subscribe(t, r, "t"), subscribe(t, r, "u")
	publishSeqs(t, r, "t") // 1: onT's reference in t
	expectRead(t, "t's first frame", onT, []string{"1"}, 0)

	res2, res3, res4 := reserveOn(t, r, "t"), reserveOn(t, r, "t"), reserveOn(t, r, "u")
	commitSeq(r, res4)
	commitSeq(r, res2)
	expectRead(t, "every topic, 3 in flight", all, []string{"1", "2"}, 0)
	expectRead(t, "t, 3 in flight", onT, []string{"2"}, 0)
	ch := waitResult(t.Context(), onU, time.Hour)
	r.Abort(res3)
	expectWait(t, ch, nil) // 4, on u, is visible now
	expectRead(t, "every topic", all, []string{"4"}, 0)
	expectRead(t, "t", onT, nil, 0)
	expectRead(t, "u", onU, []string{"4"}, 0)

	// t's next frames: the aborted one took no place in t, so nothing is
	// missed; a real loss afterwards is still told.
	publishSeqs(t, r, "t") // 5
	expectRead(t, "t after the abort", onT, []string{"5"}, 0)
	publishSeqs(t, r, "t", "t", "x", "x", "x", "x", "x", "x", "x", "t") // 6 .. 15: 14 overwrites 6
	expectRead(t, "t after losing 6 and 7", onT, []string{"15"}, 2)
	if all.Missed() != 0 || onU.Missed() != 0 {
		t.Fatalf("Missed: every topic %d, u %d; want 0", all.Missed(), onU.Missed())
	}
}

// TestAbortBatch: a batch given up leaves a gap of its length in the
// sequence numbers, and nothing else: no frame, no miss, no place taken in
// its topic.
func TestAbortBatch(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 16})
	all, onT := subscribe(t, r), subscribe(t, r, "t")
	publishSeqs(t, r, "t") // 1
	res, err := r.Reserve("t", 5)
	if err != nil {
		t.Fatal(err)
	}
	publishSeqs(t, r, "t", "") // 7, 8
	expectRead(t, "every topic, batch in flight", all, []string{"1"}, 0)
	r.Abort(res)
	publishSeqs(t, r, "t") // 9
	expectRead(t, "every topic", all, []string{"7", "8", "9"}, 0)
	expectRead(t, "t", onT, []string{"1", "7", "8", "9"}, 0)
	if r.Missed() != 0 {
		t.Fatalf("Ring.Missed: %d, want 0", r.Missed())
	}
	// Nothing was skipped in t: a late subscriber resumed after 1 reads the
	// rest of t with no miss either.
	late, resume, err := r.SubscribeAfter(1, "t")
	if err != nil || resume.Status != fanout.ResumeExact {
		t.Fatalf("SubscribeAfter(1): %+v, %v", resume, err)
	}
	defer late.Close()
	expectRead(t, "resumed after 1", late, []string{"7", "8", "9"}, 0)
}

// TestAbortZeroReservation: the Reservation of a failed Reserve can be
// aborted, for a publisher that always aborts on failure; nothing happens.
func TestAbortZeroReservation(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r)
	r.Abort(fanout.Reservation{})
	publishSeqs(t, r, "")
	expectRead(t, "after aborting nothing", sub, []string{"1"}, 0)
}

// TestResumeAcrossAbortedNumbers: SubscribeAfter finds keys around aborted
// numbers, which have none: exact just before them, and the oldest key held
// is that of a frame, never of an aborted number.
func TestResumeAcrossAbortedNumbers(t *testing.T) {
	t.Parallel()
	type want struct {
		status fanout.ResumeStatus
		oldest uint64
		read   []string
	}
	tests := []struct {
		name string
		// publish builds the ring (Size 4): keys are ten times the
		// sequence numbers, and the frames' bytes are their keys.
		publish func(tb testing.TB, r *fanout.Ring)
		after   map[uint64]want
	}{
		{
			name: "aborted in the middle", // 10, (2), 30, 40
			publish: func(tb testing.TB, r *fanout.Ring) {
				commitKey(r, reserveOn(tb, r, ""), 10)
				r.Abort(reserveOn(tb, r, ""))
				commitKey(r, reserveOn(tb, r, ""), 30)
				commitKey(r, reserveOn(tb, r, ""), 40)
			},
			after: map[uint64]want{
				5:  {fanout.ResumeOlder, 10, []string{"10", "30", "40"}},
				10: {fanout.ResumeExact, 0, []string{"30", "40"}},
				20: {fanout.ResumeExact, 0, []string{"30", "40"}},
				30: {fanout.ResumeExact, 0, []string{"40"}},
				40: {fanout.ResumeExact, 0, nil},
				45: {fanout.ResumeNewer, 0, nil},
			},
		},
		{
			name: "aborted is the oldest held", // 10 gone; (2), 30, 40, 50
			publish: func(tb testing.TB, r *fanout.Ring) {
				commitKey(r, reserveOn(tb, r, ""), 10)
				r.Abort(reserveOn(tb, r, ""))
				for _, key := range []uint64{30, 40, 50} {
					commitKey(r, reserveOn(tb, r, ""), key)
				}
			},
			after: map[uint64]want{
				10: {fanout.ResumeOlder, 30, []string{"30", "40", "50"}},
				20: {fanout.ResumeOlder, 30, []string{"30", "40", "50"}},
				30: {fanout.ResumeExact, 0, []string{"40", "50"}},
			},
		},
		{
			name: "aborted are the newest", // 10, 20, (3), (4)
			publish: func(tb testing.TB, r *fanout.Ring) {
				commitKey(r, reserveOn(tb, r, ""), 10)
				commitKey(r, reserveOn(tb, r, ""), 20)
				res, err := r.Reserve("", 2)
				if err != nil {
					tb.Fatal(err)
				}
				r.Abort(res)
			},
			after: map[uint64]want{
				10: {fanout.ResumeExact, 0, []string{"20"}},
				20: {fanout.ResumeExact, 0, nil},
				25: {fanout.ResumeNewer, 0, nil},
			},
		},
		{
			name: "nothing but aborted held",
			publish: func(tb testing.TB, r *fanout.Ring) {
				commitKey(r, reserveOn(tb, r, ""), 10)
				res, err := r.Reserve("", 4)
				if err != nil {
					tb.Fatal(err)
				}
				r.Abort(res)
			},
			after: map[uint64]want{
				5:  {fanout.ResumeNewer, 0, nil},
				10: {fanout.ResumeNewer, 0, nil},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRing(t, fanout.Options{Size: 4})
			tc.publish(t, r)
			for key, w := range tc.after {
				sub, res, err := r.SubscribeAfter(key)
				if err != nil {
					t.Fatal(err)
				}
				next, ok := sub.NextKey()
				got, missed := readAll(sub)
				_ = sub.Close()
				if res.Status != w.status || res.Oldest != w.oldest || !equal(got, w.read) || missed != 0 {
					t.Errorf("after %d: %v oldest %d, read %v missed %d; want %v oldest %d, read %v",
						key, res.Status, res.Oldest, got, missed, w.status, w.oldest, w.read)
				}
				// NextKey passes over aborted numbers: the first key read.
				if wantOK := len(w.read) > 0; ok != wantOK || (ok && fmt.Sprint(next) != w.read[0]) {
					t.Errorf("after %d: NextKey %d, %v; want the first key read", key, next, ok)
				}
			}
		})
	}
}

// TestAbortUnpinsTopic: a topic reserved on stays alive while the
// reservation is outstanding, and can be released once it is aborted. The
// janitor runs in a synctest bubble, so its sweeps follow the fake clock.
func TestAbortUnpinsTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := fanout.New(fanout.Options{Size: 8, MaxTopics: 1, TopicIdle: time.Minute})
		defer r.Close()
		res := reserveOn(t, r, "failed")
		time.Sleep(10 * time.Minute) // twenty sweeps
		synctest.Wait()
		if got := r.Topics(); got != 1 {
			t.Fatalf("Topics with the reservation outstanding: %d, want 1", got)
		}
		r.Abort(res)
		time.Sleep(2 * time.Minute) // two sweeps and more
		synctest.Wait()
		if got := r.Topics(); got != 0 {
			t.Fatalf("Topics after Abort and two idle sweeps: %d, want 0", got)
		}
		if _, err := r.Publish("another", nil); err != nil {
			t.Fatalf("a new topic once the aborted one is released: %v", err)
		}
	})
}

// TestAbortLetsAFullTableMakeRoom: a topic pinned by an outstanding
// reservation is not evicted to make room for a new topic; once the
// reservation is aborted, it is.
func TestAbortLetsAFullTableMakeRoom(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8, MaxTopics: 1})
	res := reserveOn(t, r, "failed")
	if _, err := r.Publish("another", nil); !errors.Is(err, fanout.ErrTooManyTopics) {
		t.Fatalf("a new topic with the only one pinned: %v, want ErrTooManyTopics", err)
	}
	r.Abort(res)
	if _, err := r.Publish("another", nil); err != nil {
		t.Fatalf("a new topic once the reservation is aborted: %v", err)
	}
	if got := r.Topics(); got != 1 {
		t.Fatalf("Topics: %d, want 1", got)
	}
}

// TestLappedAbortedNumbersAreCounted: the documented exception. A
// subscriber to every topic that falls a ring behind counts the numbers it
// lost, aborted ones included: what they were is gone with them.
func TestLappedAbortedNumbersAreCounted(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r)
	r.Abort(reserveOn(t, r, ""))          // 1
	publishSeqs(t, r, "", "", "", "", "") // 2 .. 6: 5 and 6 overwrite 1 and 2
	expectRead(t, "lapped", sub, []string{"3", "4", "5", "6"}, 2)
}

// TestAbortAllocatesOnce: Abort allocates the fillers together, whatever
// the reservation's length.
func TestAbortAllocatesOnce(t *testing.T) {
	r := newRing(t, fanout.Options{Size: 64})
	_, _ = r.Publish("t", nil) // creates the topic
	for _, n := range []int{1, 5} {
		allocs := testing.AllocsPerRun(allocRuns, func() {
			res, err := r.Reserve("t", n)
			if err != nil {
				t.Fatal(err)
			}
			r.Abort(res)
		})
		if allocs != 1 {
			t.Errorf("Reserve and Abort of %d: %v allocations per call, want 1", n, allocs)
		}
	}
}

// TestAbortUnderConcurrency: publishers abort some of their reservations
// (single and batches) while others commit; subscribers to every topic and
// to one topic get exactly the committed frames, each publisher's in order,
// and miss nothing.
func TestAbortUnderConcurrency(t *testing.T) {
	t.Parallel()
	const (
		publishers   = 4
		reservations = 300
		batch        = 3
	)
	topics := []string{"x", "y"}
	// Large enough that nobody is lapped: this is about aborts, not laps.
	r := newRing(t, fanout.Options{Size: publishers * reservations * batch, Shards: 2})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// Publisher p aborts reservation i when i%3 == p%3 and commits the
	// others; reservation i is a batch when i is even.
	frames := func(i int) int {
		if i%2 == 0 {
			return batch
		}
		return 1
	}
	committed := func(p int, topic string) (n int) {
		if topic != "" && topics[p%len(topics)] != topic {
			return 0
		}
		for i := range reservations {
			if i%3 != p%3 {
				n += frames(i)
			}
		}
		return n
	}
	type result struct {
		err   error
		topic string
	}
	results := make(chan result, 2)
	for _, topic := range []string{"", "x"} {
		var names []string
		if topic != "" {
			names = []string{topic}
		}
		sub := subscribe(t, r, names...)
		want := 0
		for p := range publishers {
			want += committed(p, topic)
		}
		go func() { results <- result{consumeCommitted(ctx, sub, publishers, want), topic} }()
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			topic := topics[p%len(topics)]
			sent := uint32(0)
			for i := range reservations {
				n := frames(i)
				res, err := r.Reserve(topic, n)
				if err != nil {
					t.Errorf("Reserve: %v", err)
					return
				}
				if i%3 == p%3 {
					r.Abort(res)
					continue
				}
				msgs := make([]fanout.Message, n)
				for k := range msgs {
					msgs[k].Data = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(p)), sent)
					sent++
				}
				r.Commit(res, msgs...)
			}
		})
	}
	wg.Wait()
	for range 2 {
		if res := <-results; res.err != nil {
			t.Errorf("subscriber to %q: %v", res.topic, res.err)
		}
	}
}

// consumeCommitted reads until it has want frames, checking that nothing is
// missed and that each publisher's frames come in the order it committed
// them.
func consumeCommitted(ctx context.Context, sub *fanout.Subscriber, publishers, want int) error {
	nextOf := make([]uint32, publishers)
	batch := make([]*fanout.Frame, 0, 64)
	for count := 0; count < want; {
		var missed uint64
		batch, missed = sub.Read(batch[:0])
		if missed != 0 {
			return fmt.Errorf("missed %d frames after %d", missed, count)
		}
		for _, f := range batch {
			p := binary.BigEndian.Uint32(f.Bytes()[:4])
			n := binary.BigEndian.Uint32(f.Bytes()[4:])
			if n != nextOf[p] {
				return fmt.Errorf("publisher %d: frame %d, want %d", p, n, nextOf[p])
			}
			nextOf[p]++
			count++
		}
		if len(batch) == 0 {
			if err := sub.Wait(ctx, 0); err != nil {
				return fmt.Errorf("Wait after %d of %d frames: %w", count, want, err)
			}
		}
	}
	return nil
}

package fanout_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Tests of what subscribers are told they missed, and of Ring.Missed.

// readOnce reads once with room for 8 frames and returns their bytes.
func readOnce(sub *fanout.Subscriber) (got []string, missed uint64) {
	batch, missed := sub.Read(make([]*fanout.Frame, 0, 8))
	for _, f := range batch {
		got = append(got, string(f.Bytes()))
	}
	return got, missed
}

func expectReadOnce(tb testing.TB, what string, sub *fanout.Subscriber, want []string, wantMissed uint64) {
	tb.Helper()
	if got, missed := readOnce(sub); !equal(got, want) || missed != wantMissed {
		tb.Fatalf("%s: read %v, missed %d; want %v, missed %d", what, got, missed, want, wantMissed)
	}
}

// TestLapReportedBeforeTheFramesAfterIt: a subscriber to every topic that
// finds a lap after frames it already took in the same Read stops there: the
// frames a Read returns all come after the ones it reports missed.
func TestLapReportedBeforeTheFramesAfterIt(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r)
	publishSeqs(t, r, "", "", "", "") // 1 .. 4
	res5 := reserveOn(t, r, "")
	publishSeqs(t, r, "") // 6 overwrites 2; 1 is still held (5 is in flight)
	expectReadOnce(t, "up to the lap", sub, []string{"1"}, 0)
	expectReadOnce(t, "the lap, then what follows", sub, []string{"3", "4"}, 1)
	commitSeq(r, res5)
	expectReadOnce(t, "the rest", sub, []string{"5", "6"}, 0)
}

// TestSkipThroughIsNotAMiss: frames of its topic that a subscriber to some
// topics passes over with SkipThrough are not counted as missed at the
// topic's next frame; frames really lost after them are.
func TestSkipThroughIsNotAMiss(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r, "a")
	publishSeqs(t, r, "a") // 1: the subscriber's first frame of a
	expectReadOnce(t, "first frame", sub, []string{"1"}, 0)
	publishSeqs(t, r, "a", "a") // 2, 3: its client has them already
	sub.SkipThrough(3)          // keys are the sequence numbers
	publishSeqs(t, r, "a")
	expectReadOnce(t, "after the skipped frames", sub, []string{"4"}, 0)
	publishSeqs(t, r, "a", "x", "x", "x", "x", "a") // 5 .. 10: 9 overwrites 5
	expectReadOnce(t, "after a real loss", sub, []string{"10"}, 1)
}

// TestMissedKeepsAClosedLaggardsLoss: the frames a subscriber to every topic
// lost without reading far enough to be told are counted by Ring.Missed
// before it reads, after it reads, and after it is closed without reading.
func TestMissedKeepsAClosedLaggardsLoss(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	reader, stuck := subscribe(t, r), subscribe(t, r)
	publishN(t, r, 1, 10) // the ring holds 7 .. 10: 6 lost for each
	if got := r.Missed(); got != 12 {
		t.Fatalf("Missed before any Read: %d, want 12", got)
	}
	expectRead(t, "reader", reader, seqStrings(7, 10), 6)
	if got := r.Missed(); got != 12 {
		t.Fatalf("Missed after one Read: %d, want 12", got)
	}
	_ = stuck.Close()
	if got := r.Missed(); got != 12 {
		t.Fatalf("Missed after the stuck subscriber's Close: %d, want 12", got)
	}
}

// TestMissedCountsOverwrittenFramesOnly: a number reserved a ring ahead of a
// subscriber's position, not committed yet, does not make Ring.Missed count
// the frame there: the subscriber can still read it, and does.
func TestMissedCountsOverwrittenFramesOnly(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r)
	publishSeqs(t, r, "", "", "", "") // 1 .. 4
	res := reserveOn(t, r, "")        // 5, in flight: 1 is still held
	if got := r.Missed(); got != 0 {
		t.Fatalf("Missed with 5 in flight: %d, want 0", got)
	}
	expectRead(t, "the frames still held", sub, seqStrings(1, 4), 0)
	commitSeq(r, res)
	expectRead(t, "5", sub, []string{"5"}, 0)
	if got := r.Missed(); got != 0 {
		t.Fatalf("Missed: %d, want 0", got)
	}
}

// TestTopicMissesCountedBeforeFirstFrame: a subscriber to a topic that is
// lapped before it read any frame of that topic is told exactly how many it
// missed, as one that had read some.
func TestTopicMissesCountedBeforeFirstFrame(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	publishOn(t, r, "a", 1, 3) // before the subscriber: not its business
	sub := subscribe(t, r, "a")
	publishOn(t, r, "a", 4, 5)   // 5 for it...
	publishOn(t, r, "b", 100, 6) // ...overwritten by another topic's frames
	publishOn(t, r, "a", 9, 1)
	got, missed := readAll(sub)
	if missed != 4 || !equal(got, []string{"8", "9"}) {
		t.Fatalf("got %v, missed %d; want [8 9], missed 4", got, missed)
	}
}

// TestResumedTopicMissesExact: a subscriber resuming on a topic after a key
// counts exactly what it then misses of its topic, whether or not a frame of
// its topic was the one at the key.
func TestResumedTopicMissesExact(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	seqs := publishOn(t, r, "b", 1, 2) // the key is a frame of another topic
	publishOn(t, r, "a", 3, 2)         // after the key: to be delivered
	sub, res, err := r.SubscribeAfter(seqs[1], "a")
	if err != nil || res.Status != fanout.ResumeExact {
		t.Fatalf("SubscribeAfter: %v, %v", res.Status, err)
	}
	defer sub.Close()
	publishOn(t, r, "a", 5, 2)
	publishOn(t, r, "b", 100, 6) // laps the subscriber: 3 of "a" lost
	publishOn(t, r, "a", 7, 1)
	got, missed := readAll(sub)
	if missed != 3 || !equal(got, []string{"6", "7"}) {
		t.Fatalf("got %v, missed %d; want [6 7], missed 3", got, missed)
	}
}

// TestMissedIncludesClosedSubscribersLosses: a subscriber that stops reading
// (stuck writing, say) and is then closed has its losses in Ring.Missed and
// its own Missed, and Ring.Missed never goes down meanwhile.
func TestMissedIncludesClosedSubscribersLosses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		topics []string
		want   uint64
	}{
		{"every topic", nil, 13},      // 21 frames, the 8 newest held
		{"a topic", []string{"a"}, 7}, // 11 of its frames, 4 held
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRing(t, fanout.Options{Size: 8})
			sub, err := r.Subscribe(tc.topics...)
			if err != nil {
				t.Fatal(err)
			}
			var last uint64
			check := func() {
				t.Helper()
				if m := r.Missed(); m < last {
					t.Fatalf("Ring.Missed went down: %d after %d", m, last)
				} else {
					last = m
				}
			}
			for i := range 10 {
				publishOn(t, r, "a", i, 1)
				publishOn(t, r, "b", 100+i, 1)
				check()
			}
			publishOn(t, r, "a", 10, 1)
			check()
			_ = sub.Close()
			check()
			if got := sub.Missed(); got != tc.want {
				t.Errorf("the subscriber's Missed: %d, want %d", got, tc.want)
			}
			if got := r.Missed(); got != tc.want {
				t.Errorf("Ring.Missed: %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCloseCountsNoLossBeforeASkippedFrame: a subscriber to a topic, lapped
// while its client gets the frames another way (SkipThrough), is closed:
// the frames it lost come before one its client has, so they are no loss,
// and Close counts none, as a Read would have.
func TestCloseCountsNoLossBeforeASkippedFrame(t *testing.T) {
	t.Parallel()
	for _, read := range []bool{true, false} {
		r := newRing(t, fanout.Options{Size: 4})
		sub := subscribe(t, r, "a")
		sub.SkipThrough(6)         // its client has up to 6 (keys are the sequence numbers)
		publishOn(t, r, "a", 1, 8) // the ring holds 5 .. 8: 1 .. 4 lost
		if read {
			expectRead(t, "after the lap", sub, []string{"7", "8"}, 0)
		}
		_ = sub.Close()
		if sub.Missed() != 0 || r.Missed() != 0 {
			t.Errorf("read before Close %v: Missed: subscriber %d, ring %d; want 0", read, sub.Missed(), r.Missed())
		}
	}
}

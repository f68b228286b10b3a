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

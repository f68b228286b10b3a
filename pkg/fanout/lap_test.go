package fanout_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// Tests of a ring that laps a reservation still in flight: a publisher held
// up between Reserve and Commit while others publish more than a ring's
// worth of frames. The ring's size is 4 in all of them; frames carry their
// sequence number as bytes.

// reserveOn reserves one frame on topic ("" broadcasts).
func reserveOn(tb testing.TB, r *fanout.Ring, topic string) fanout.Reservation {
	tb.Helper()
	res, err := r.Reserve(topic, 1)
	if err != nil {
		tb.Fatalf("Reserve(%q): %v", topic, err)
	}
	return res
}

// commitSeq commits res with its sequence number as bytes.
func commitSeq(r *fanout.Ring, res fanout.Reservation) {
	r.Commit(res, fanout.Message{Data: []byte(seqString(res.Seq()))})
}

// publishSeqs publishes one frame per topic, each with its sequence number
// as bytes.
func publishSeqs(tb testing.TB, r *fanout.Ring, topics ...string) {
	tb.Helper()
	for _, topic := range topics {
		commitSeq(r, reserveOn(tb, r, topic))
	}
}

func seqString(seq uint64) string { return seqStrings(int(seq), int(seq))[0] }

// expectRead checks what a subscriber reads now, in batches of up to 3.
func expectRead(tb testing.TB, what string, sub *fanout.Subscriber, want []string, wantMissed uint64) {
	tb.Helper()
	got, missed := readAll(sub)
	if !equal(got, want) || missed != wantMissed {
		tb.Fatalf("%s: read %v, missed %d; want %v, missed %d", what, got, missed, want, wantMissed)
	}
}

// TestSequencerLappedWithReservationsInFlight: the ring laps a number still
// in flight while the numbers after it are in flight too. The sequencer
// passes the lost number only, never one still in flight: a subscriber that
// a lap already moved past that number then waits for it instead of finding
// an empty or older slot (Read used to dereference a nil frame there).
func TestSequencerLappedWithReservationsInFlight(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r)
	publishSeqs(t, r, "")                                  // 1
	res2, res3 := reserveOn(t, r, ""), reserveOn(t, r, "") // in flight
	publishSeqs(t, r, "", "")                              // 4, 5: 5 overwrites 1
	res6 := reserveOn(t, r, "")
	// The oldest that may be held is now 3: 1 is overwritten, 2 will be.
	expectRead(t, "lapped at 1", sub, nil, 2)
	res7 := reserveOn(t, r, "")
	commitSeq(r, res6) // overwrites 2's slot: 2 is lost
	expectRead(t, "with 3 in flight", sub, nil, 0)
	commitSeq(r, res3)
	expectRead(t, "3 committed", sub, []string{"3", "4", "5", "6"}, 0)
	commitSeq(r, res7)
	commitSeq(r, res2) // too late: its slot holds 6
	expectRead(t, "the rest", sub, []string{"7"}, 0)
	if sub.Missed() != 2 || r.Missed() != 2 {
		t.Fatalf("Missed: subscriber %d, ring %d; want 2 (1 and 2)", sub.Missed(), r.Missed())
	}
}

// TestLappedNumberDoesNotHideLaterTopicMisses: a frame committed after the
// sequencer passed a lost number before it gets its place in its topic like
// any other, so a subscriber to that topic that reads it is still told of
// the topic's frames it misses afterwards.
func TestLappedNumberDoesNotHideLaterTopicMisses(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub := subscribe(t, r, "a")
	publishSeqs(t, r, "a") // 1
	expectRead(t, "first frame of a", sub, []string{"1"}, 0)
	publishSeqs(t, r, "x") // 2, not read yet
	res3 := reserveOn(t, r, "x")
	publishSeqs(t, r, "a", "x", "x") // 4, 5, 6: 6 overwrites 2
	res7 := reserveOn(t, r, "x")
	expectRead(t, "lapped at 2", sub, nil, 0) // now at 4, past 3 in flight
	res8 := reserveOn(t, r, "x")
	commitSeq(r, res7) // overwrites 3's slot: 3 is lost, 4 .. 7 visible
	expectRead(t, "4, past the lost 3", sub, []string{"4"}, 0)
	commitSeq(r, res8)
	commitSeq(r, res3)                                      // too late
	publishSeqs(t, r, "a", "x", "x", "x", "x", "a")         // 9 .. 14: 13 overwrites 9
	expectRead(t, "after losing 9", sub, []string{"14"}, 1) // told: 9 of a is gone
}

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

// expectRead checks what a subscriber reads now, in batches of up to 3. It
// fails rather than loop if Read never runs dry (a ring whose slots moved
// backwards would send a subscriber round and round).
func expectRead(tb testing.TB, what string, sub *fanout.Subscriber, want []string, wantMissed uint64) {
	tb.Helper()
	var (
		got    []string
		missed uint64
	)
	batch := make([]*fanout.Frame, 0, 3)
	for range 1000 {
		var m uint64
		batch, m = sub.Read(batch[:0])
		missed += m
		if len(batch) == 0 {
			if !equal(got, want) || missed != wantMissed {
				tb.Fatalf("%s: read %v, missed %d; want %v, missed %d", what, got, missed, want, wantMissed)
			}
			return
		}
		for _, f := range batch {
			got = append(got, string(f.Bytes()))
		}
	}
	tb.Fatalf("%s: Read still returns frames after 1000 calls (%d frames, first %v)", what, len(got), got[:min(len(got), 8)])
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

// TestReservationLappedWhileSubscribersKeepUp: a frame reserved, then
// lapped by a ring's worth of frames published after it, then committed.
//
// The lap makes the sequencer pass the reserved number as lost (advance's
// lapped branch), so subscribers read on without waiting for the commit;
// the late commit then finds its slot holding a frame a ring ahead and does
// not store (store's lapped branch): nobody ever receives it.
//
// What subscribers are told: a subscriber to every topic counts the lost
// number as missed, exactly (it counts numbers). A subscriber to the topic
// is not told: a frame gets its place in its topic (what topic subscribers
// count misses by) only when it becomes visible, and this one never did:
// it is lost to a subscriber to its topic without it being told.
func TestReservationLappedWhileSubscribersKeepUp(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	all, onA := subscribe(t, r), subscribe(t, r, "a")
	publishSeqs(t, r, "a") // 1
	expectRead(t, "every topic", all, []string{"1"}, 0)
	expectRead(t, "a", onA, []string{"1"}, 0)
	res := reserveOn(t, r, "a")           // 2
	publishSeqs(t, r, "a", "a", "a", "a") // 3 .. 6: 6 takes 2's slot
	expectRead(t, "every topic, 2 lapped", all, []string{"3", "4", "5", "6"}, 1)
	expectRead(t, "a, 2 lapped", onA, []string{"3", "4", "5", "6"}, 0) // not told: 2 never visible
	commitSeq(r, res)                                                  // too late: dropped
	expectRead(t, "every topic, after the late commit", all, nil, 0)
	expectRead(t, "a, after the late commit", onA, nil, 0)
	// The ring still holds 3 .. 6, not 2.
	late, resume, err := r.SubscribeAfter(0)
	if err != nil || resume.Status != fanout.ResumeOlder || resume.Oldest != 3 {
		t.Fatalf("SubscribeAfter(0): %+v, %v; want older, oldest 3", resume, err)
	}
	defer late.Close()
	expectRead(t, "resumed", late, []string{"3", "4", "5", "6"}, 0)
	if got := r.Missed(); got != 1 {
		t.Fatalf("Ring.Missed: %d, want 1", got)
	}
}

// TestReservationLappedWhileSubscribersStall: as above, but the subscribers
// do not read while the ring laps them too, two rings' worth.
//
// A subscriber to every topic is told exactly how many numbers it lost: the
// reserved one and the frames overwritten after it. A subscriber to the
// topic is told exactly how many of the topic's frames it lost after they
// became visible, but not the reserved one, which never did.
func TestReservationLappedWhileSubscribersStall(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	all, onA := subscribe(t, r), subscribe(t, r, "a")
	publishSeqs(t, r, "a") // 1
	expectRead(t, "every topic", all, []string{"1"}, 0)
	expectRead(t, "a", onA, []string{"1"}, 0)
	res := reserveOn(t, r, "a")                                    // 2
	publishSeqs(t, r, "a", "a", "a", "a", "a", "a", "a", "a", "a") // 3 .. 11: the ring holds 8 .. 11
	// Before anyone reads, Ring.Missed counts what the subscriber to every
	// topic has lost (2 .. 7); the one to a is told at a's next frame.
	if got := r.Missed(); got != 6 {
		t.Fatalf("Ring.Missed before reading: %d, want 6", got)
	}
	expectRead(t, "every topic", all, seqStrings(8, 11), 6) // 2 .. 7
	expectRead(t, "a", onA, seqStrings(8, 11), 5)           // 3 .. 7: not 2
	commitSeq(r, res)                                       // too late: dropped
	publishSeqs(t, r, "a")                                  // 12
	expectRead(t, "every topic, after the late commit", all, []string{"12"}, 0)
	expectRead(t, "a, after the late commit", onA, []string{"12"}, 0)
	if got := r.Missed(); got != 11 {
		t.Fatalf("Ring.Missed: %d, want 11 (6 + 5)", got)
	}
}

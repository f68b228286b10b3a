package fanout_test

import (
	"fmt"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

func TestSubscribeAfter(t *testing.T) {
	t.Parallel()
	const size = 8
	tests := []struct {
		after      uint64
		wantStatus fanout.ResumeStatus
		wantOldest uint64
		wantFrom   int // first frame read; frames run to 10
	}{
		{after: 0, wantStatus: fanout.ResumeOlder, wantOldest: 3, wantFrom: 3},
		{after: 1, wantStatus: fanout.ResumeOlder, wantOldest: 3, wantFrom: 3},
		{after: 2, wantStatus: fanout.ResumeOlder, wantOldest: 3, wantFrom: 3},
		{after: 3, wantStatus: fanout.ResumeExact, wantFrom: 4},
		{after: 7, wantStatus: fanout.ResumeExact, wantFrom: 8},
		{after: 10, wantStatus: fanout.ResumeExact, wantFrom: 11}, // the newest: nothing to replay
		{after: 11, wantStatus: fanout.ResumeNewer, wantFrom: 11},
		{after: 999, wantStatus: fanout.ResumeNewer, wantFrom: 11},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after=%d", tc.after), func(t *testing.T) {
			t.Parallel()
			r := newRing(t, fanout.Options{Size: size})
			publishN(t, r, 1, 10)
			sub, res, err := r.SubscribeAfter(tc.after)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if res.Status != tc.wantStatus || res.Oldest != tc.wantOldest {
				t.Errorf("resume: got %v oldest %d, want %v oldest %d", res.Status, res.Oldest, tc.wantStatus, tc.wantOldest)
			}
			got, missed := readAll(sub)
			if missed != 0 {
				t.Errorf("missed: got %d, want 0 (the gap is Resume's to report)", missed)
			}
			if want := seqStrings(tc.wantFrom, 10); !equal(got, want) {
				t.Errorf("frames: got %v, want %v", got, want)
			}
			// New frames follow without a gap.
			publishN(t, r, 11, 2)
			if got, missed := readAll(sub); missed != 0 || !equal(got, seqStrings(11, 12)) {
				t.Errorf("after new publishes: got %v, missed %d", got, missed)
			}
		})
	}
}

// TestSubscribeAfterSparseKeys: keys chosen by the publisher (a stream's
// sequence numbers, with holes) are found by value.
func TestSubscribeAfterSparseKeys(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	keys := []uint64{100, 101, 105, 106, 200, 201, 202, 300, 301, 302} // 8 held: from 105
	for _, k := range keys {
		res, err := r.Reserve("", 1)
		if err != nil {
			t.Fatal(err)
		}
		r.Commit(res, fanout.Message{Data: []byte(fmt.Sprint(k)), Key: k})
	}
	for _, tc := range []struct {
		after  uint64
		status fanout.ResumeStatus
		want   []string
	}{
		{101, fanout.ResumeOlder, []string{"105", "106", "200", "201", "202", "300", "301", "302"}},
		{105, fanout.ResumeExact, []string{"106", "200", "201", "202", "300", "301", "302"}},
		{150, fanout.ResumeExact, []string{"200", "201", "202", "300", "301", "302"}}, // a hole: nothing lost
		{302, fanout.ResumeExact, nil},
		{303, fanout.ResumeNewer, nil},
	} {
		sub, res, err := r.SubscribeAfter(tc.after)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readAll(sub)
		_ = sub.Close()
		if res.Status != tc.status || !equal(got, tc.want) {
			t.Errorf("after %d: %v %v, want %v %v", tc.after, res.Status, got, tc.status, tc.want)
		}
	}
}

// TestSubscribeAfterOnTopicCountsMisses: a subscriber to a topic resumed
// right after one of that topic's frames is told how many of the topic's
// frames it misses afterwards.
func TestSubscribeAfterOnTopicCountsMisses(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	seqs := publishOn(t, r, "t", 1, 2) // frames 1, 2 of t
	sub, res, err := r.SubscribeAfter(seqs[0], "t")
	if err != nil || res.Status != fanout.ResumeExact {
		t.Fatalf("SubscribeAfter: %v, %v", res.Status, err)
	}
	defer sub.Close()
	publishOn(t, r, "t", 3, 6) // t's frames 3..8: the ring keeps 5..8
	got, missed := readAll(sub)
	if missed != 3 || !equal(got, seqStrings(5, 8)) {
		t.Fatalf("got %v, missed %d; want 5..8 and 3 missed (2, 3, 4)", got, missed)
	}
}

func TestSubscribeAfterOnEmptyRing(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub, res, err := r.SubscribeAfter(5)
	if err != nil || res.Status != fanout.ResumeNewer {
		t.Fatalf("got %v, %v; want ResumeNewer", res.Status, err)
	}
	defer sub.Close()
	publishN(t, r, 1, 1)
	if got, _ := readAll(sub); !equal(got, []string{"1"}) {
		t.Fatalf("got %v", got)
	}
}

// TestSkipThroughAndNextKey: a subscriber told to skip through a key passes
// over the frames up to it, without counting them as missed; NextKey tells
// the key it will look at next.
func TestSkipThroughAndNextKey(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	sub := subscribe(t, r)
	if _, ok := sub.NextKey(); ok {
		t.Fatal("NextKey on an empty ring")
	}
	for _, k := range []uint64{10, 11, 12, 13} {
		res, err := r.Reserve("", 1)
		if err != nil {
			t.Fatal(err)
		}
		r.Commit(res, fanout.Message{Data: []byte(fmt.Sprint(k)), Key: k})
	}
	if k, ok := sub.NextKey(); !ok || k != 10 {
		t.Fatalf("NextKey: %d %v, want 10", k, ok)
	}
	sub.SkipThrough(11)
	if got, missed := readAll(sub); missed != 0 || !equal(got, []string{"12", "13"}) {
		t.Fatalf("got %v (missed %d), want [12 13]", got, missed)
	}
}

package fanout_test

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

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

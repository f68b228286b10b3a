package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// TestPatternSubscriber: a subscriber to a pattern receives, in order, the
// frames of every topic the pattern matches, existing when it subscribed or
// created later, and broadcast frames; not the frames of other topics.
func TestPatternSubscriber(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 64})
	publishOn(t, r, "player.a", 0, 1) // before the subscriber
	sub := subscribe(t, r, "player.*", "ads")
	publishOn(t, r, "player.a", 1, 1)
	publishOn(t, r, "player.b", 2, 1) // a new topic
	publishOn(t, r, "player.a.x", 3, 1)
	publishOn(t, r, "video", 4, 1)
	publishOn(t, r, "ads", 5, 1)
	publishN(t, r, 6, 1) // broadcast
	publishOn(t, r, "player.c", 7, 1)
	got, missed := readAll(sub)
	if !equal(got, []string{"1", "2", "5", "6", "7"}) || missed != 0 {
		t.Fatalf("got %v, missed %d; want [1 2 5 6 7], none missed", got, missed)
	}
	tail := subscribe(t, r, "player.>")
	publishOn(t, r, "player.a.x", 8, 1)
	publishOn(t, r, "player", 9, 1)
	if got, _ := readAll(tail); !equal(got, []string{"8"}) {
		t.Fatalf("player.> got %v, want [8]", got)
	}
}

// TestPatternWakesOnlyItsSubscribers: a frame of a topic a pattern matches
// wakes the pattern's sleeping subscribers, including for a topic created
// after they went to sleep; a frame of another topic does not. In a
// synctest bubble: synctest.Wait lets every wake-up happen before looking.
func TestPatternWakesOnlyItsSubscribers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := fanout.New(fanout.Options{Size: 64})
		defer r.Close()
		sub, err := r.Subscribe("player.*")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		woke := make(chan error, 1)
		go func() { woke <- sub.Wait(context.Background(), time.Minute) }()
		defer sub.Interrupt() // on failure: a bubble left with a blocked goroutine panics
		synctest.Wait()
		if got := r.TopicSleepers("player.*"); got != 1 {
			t.Fatalf("sleepers on the pattern: %d, want 1", got)
		}
		if _, err := r.Publish("video", nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case err := <-woke:
			t.Fatalf("woken (%v) by a frame of another topic", err)
		default:
		}
		if _, err := r.Publish("player.new", []byte("1")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case err := <-woke:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("not woken by a frame of a topic created after it slept")
		}
		if got, _ := readAll(sub); !equal(got, []string{"1"}) {
			t.Fatalf("got %v", got)
		}
	})
}

// TestPatternMissesAreExact: a subscriber to a pattern that falls behind is
// told exactly how many frames of its topics it missed, per topic, also for
// a topic created after it subscribed, and for the frames it had lost when
// it is closed.
func TestPatternMissesAreExact(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 8})
	publishOn(t, r, "p.a", 0, 2) // before the subscriber
	sub := subscribe(t, r, "p.*")
	publishOn(t, r, "p.a", 10, 3) // 3 of p.a
	publishOn(t, r, "p.b", 20, 2) // 2 of a new topic
	publishOn(t, r, "q", 30, 6)   // other frames, that lap the subscriber
	publishOn(t, r, "p.a", 40, 1)
	publishOn(t, r, "p.b", 50, 1)
	got, missed := readAll(sub)
	if !equal(got, []string{"40", "50"}) || missed != 5 {
		t.Fatalf("got %v, missed %d; want [40 50], 5 missed", got, missed)
	}
	publishOn(t, r, "p.c", 60, 3) // a new topic, lost while the subscriber looks away
	publishOn(t, r, "q", 70, 8)
	_ = sub.Close()
	if got := sub.Missed(); got != 5+3 {
		t.Fatalf("Missed after Close: %d, want 8", got)
	}
}

// TestCloseCountsATopicNamedAndMatchedOnce: a subscriber that names a topic
// and a pattern that matches it receives the topic's frames once, and, closed
// while lapped, counts what it lost of them once: not the frames it read
// (Close used to count every frame of the topic since its start again, as if
// lost through the pattern).
func TestCloseCountsATopicNamedAndMatchedOnce(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 4})
	sub, err := r.Subscribe("a.x", "a.*")
	if err != nil {
		t.Fatal(err)
	}
	publishOn(t, r, "a.x", 0, 3) // 1 .. 3
	expectRead(t, "a.x", sub, []string{"0", "1", "2"}, 0)
	publishOn(t, r, "a.x", 3, 2) // 4, 5: lost
	publishOn(t, r, "q", 10, 8)  // 6 .. 13: the ring holds 10 .. 13
	_ = sub.Close()
	if sub.Missed() != 2 || r.Missed() != 2 {
		t.Fatalf("Missed after Close: subscriber %d, ring %d; want 2", sub.Missed(), r.Missed())
	}
}

// TestPatternResume: SubscribeAfter with a pattern resumes right after the
// key, with the frames of every matching topic after it.
func TestPatternResume(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 64})
	publishOn(t, r, "p.a", 0, 1)
	seqs := publishOn(t, r, "q", 1, 1)
	publishOn(t, r, "p.b", 2, 1)
	publishOn(t, r, "p.a", 3, 1)
	sub, res, err := r.SubscribeAfter(seqs[0], "p.*")
	if err != nil || res.Status != fanout.ResumeExact {
		t.Fatalf("SubscribeAfter: %v, %v", res.Status, err)
	}
	defer sub.Close()
	publishOn(t, r, "p.c", 4, 1)
	if got, missed := readAll(sub); !equal(got, []string{"2", "3", "4"}) || missed != 0 {
		t.Fatalf("got %v, missed %d", got, missed)
	}
}

// TestPatternNotCountedAsTopic: patterns are not topics: they hold no
// frames, do not count against MaxTopics, and go when their last subscriber
// does.
func TestPatternNotCountedAsTopic(t *testing.T) {
	t.Parallel()
	r := newRing(t, fanout.Options{Size: 16, MaxTopics: 1})
	a := subscribe(t, r, "a.*")
	b := subscribe(t, r, "a.*", "b.>")
	if got := r.Topics(); got != 0 {
		t.Fatalf("Topics: %d with only patterns subscribed, want 0", got)
	}
	held := subscribe(t, r, "a.x")
	if _, err := r.Publish("a.y", nil); !errors.Is(err, fanout.ErrTooManyTopics) {
		t.Fatalf("a second topic with one listened to: %v, want ErrTooManyTopics", err)
	}
	_ = a.Close()
	_ = b.Close()
	_ = held.Close()
	if _, err := r.Publish("a.y", []byte("y")); err != nil {
		t.Fatal(err)
	}
	again := subscribe(t, r, "a.*")
	publishOn(t, r, "a.z", 1, 1)
	if got, _ := readAll(again); !equal(got, []string{"1"}) {
		t.Fatalf("a pattern subscribed again: got %v", got)
	}
}

// BenchmarkPublishWithPatterns publishes on a topic that 0, 10 or 100
// distinct patterns match, each with a subscriber: the cost of a publish is
// one more load per matching pattern.
func BenchmarkPublishWithPatterns(b *testing.B) {
	const name = "a.b.c.d.e.f.g"
	segs := strings.Split(name, ".")
	var all []string // the 128 patterns that match name: every subset of segments as "*"
	for mask := range 1 << len(segs) {
		p := make([]string, len(segs))
		for i, seg := range segs {
			if mask&(1<<i) != 0 {
				seg = "*"
			}
			p[i] = seg
		}
		if pattern := strings.Join(p, "."); pattern != name {
			all = append(all, pattern)
		}
	}
	for _, patterns := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("patterns=%d", patterns), func(b *testing.B) {
			r := fanout.New(fanout.Options{Size: 4096})
			defer r.Close()
			subs := make([]*fanout.Subscriber, 0, patterns)
			defer func() {
				for _, sub := range subs {
					_ = sub.Close()
				}
			}()
			for _, p := range all[:patterns] {
				sub, err := r.Subscribe(p)
				if err != nil {
					b.Fatal(err)
				}
				subs = append(subs, sub)
			}
			data := []byte("data: x\n\n")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Publish(name, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

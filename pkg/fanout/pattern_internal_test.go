package fanout

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"
)

// Internal tests of patterns: wake-ups, and the patterns topics list. In a
// synctest bubble, synctest.Wait lets every wake-up that is due happen
// before the test looks: no test depends on timing. A test that fails
// releases its waiting goroutines first (a bubble left with blocked
// goroutines panics, which would hide the other tests' results).

// TestReleasedTopicFrameWakesAPatternCreatedSince: a frame committed on a
// topic that is then released before the frame becomes visible (a number
// before it is still in flight) reaches the subscribers to a pattern that
// matches the topic's name, even if the pattern came after the release (the
// released topic does not list it) and no live topic has that name: it
// wakes them. It used to wake nobody: the subscriber slept on with a frame
// to read.
func TestReleasedTopicFrameWakesAPatternCreatedSince(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Options{Size: 16})
		defer r.Close()
		held, err := r.Reserve("b", 1) // 1, in flight
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Publish("a.x", []byte("2")); err != nil { // 2: committed, not visible
			t.Fatal(err)
		}
		r.topics.releaseIdle()
		r.topics.releaseIdle() // a.x released; b is pinned
		if r.topics.get("a.x") != nil {
			t.Fatal("a.x not released")
		}
		sub, err := r.Subscribe("a.*")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		woke := make(chan error, 1)
		go func() { woke <- sub.Wait(ctx, time.Hour) }()
		synctest.Wait()
		r.Commit(held, Message{Data: []byte("1")}) // 1 and 2 visible
		synctest.Wait()
		select {
		case err := <-woke:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("not woken by a frame of a released topic its pattern matches")
		}
		batch, _ := sub.Read(make([]*Frame, 0, 4))
		if len(batch) != 1 || string(batch[0].Bytes()) != "2" {
			t.Fatalf("read %d frames, want frame 2", len(batch))
		}
	})
}

// TestPatternWakeUps: subscribers asleep on patterns, on a topic and on a
// pattern that matches nothing published, over two shards. Each frame wakes
// exactly the subscribers whose pattern (or topic) matches its topic, whether
// the topic existed when they went to sleep or came later; a broadcast frame
// wakes all. The count of sleepers on patterns, which spares the sequencer
// the patterns while it is 0, follows.
func TestPatternWakeUps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Options{Size: 64, Shards: 2})
		defer r.Close()
		if _, err := r.Publish("a.a", nil); err != nil { // exists before anyone sleeps
			t.Fatal(err)
		}
		names := []string{"a.*", "*.b", "a.>", "a.b", "x.>"}
		subs := make(map[string]*Subscriber)
		defer func() {
			for _, sub := range subs {
				_ = sub.Close()
			}
		}()
		for _, name := range names {
			sub, err := r.Subscribe(name)
			if err != nil {
				t.Fatal(err)
			}
			subs[name] = sub
		}
		type round struct {
			topic string // "" broadcasts
			woken []string
		}
		play := func(round round) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			woke := make(map[string]chan error)
			for _, name := range names {
				sub := subs[name]
				if b, _ := sub.Read(make([]*Frame, 0, 8)); len(b) != 0 {
					t.Fatalf("%q: %s has %d frames before the round", round.topic, name, len(b))
				}
				select { // a token left by an earlier round's wake-up
				case <-sub.wake:
				default:
				}
				ch := make(chan error, 1)
				woke[name] = ch
				go func() { ch <- sub.Wait(ctx, 0) }()
			}
			synctest.Wait()
			if got := int(r.patternSleepers.Load()); got != 4 {
				t.Fatalf("%q: %d sleepers on patterns, want 4", round.topic, got)
			}
			if _, err := r.Publish(round.topic, []byte(round.topic)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			var got []string
			for _, name := range names {
				select {
				case err := <-woke[name]:
					if err != nil {
						t.Fatalf("%q: %s: %v", round.topic, name, err)
					}
					got = append(got, name)
				default:
				}
			}
			if !slices.Equal(got, round.woken) {
				t.Fatalf("a frame of %q woke %q, want %q", round.topic, got, round.woken)
			}
			asleep := 0 // on patterns, still registered after the round
			for _, name := range names {
				if name != "a.b" && !slices.Contains(got, name) {
					asleep++
				}
				if batch, _ := subs[name].Read(make([]*Frame, 0, 8)); len(batch) != btoi(slices.Contains(got, name)) {
					t.Fatalf("%q: %s reads %d frames", round.topic, name, len(batch))
				}
			}
			cancel()
			for _, name := range names {
				if !slices.Contains(got, name) {
					if err := <-woke[name]; err != context.Canceled {
						t.Fatalf("%q: %s: %v, want canceled", round.topic, name, err)
					}
				}
			}
			if got := int(r.patternSleepers.Load()); got != asleep {
				t.Fatalf("%q: %d sleepers on patterns after the round, want %d", round.topic, got, asleep)
			}
		}
		for _, round := range []round{
			{"a.a", []string{"a.*", "a.>"}},
			{"a.b", []string{"a.*", "*.b", "a.>", "a.b"}},
			{"a.b.c", []string{"a.>"}}, // created after they slept
			{"c", nil},
			{"", names},
			{"b.b", []string{"*.b"}},
			{"x", nil},
			{"x.y.z", []string{"x.>"}},
		} {
			play(round)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// patternNames returns the names of the patterns topic name lists, sorted;
// it fails if one is not the live pattern of its name.
func patternNames(tb testing.TB, r *Ring, name string) []string {
	tb.Helper()
	t := r.topics.get(name)
	if t == nil {
		tb.Fatalf("no topic %q", name)
	}
	list := t.patternList()
	names := make([]string, 0, len(list))
	for _, p := range list {
		if v, ok := r.topics.patterns.Load(p.name); !ok || v.(*Topic) != p {
			tb.Fatalf("topic %q lists pattern %q, which is not live", name, p.name)
		}
		names = append(names, p.name)
	}
	slices.Sort(names)
	return names
}

// TestPatternGoesWithItsLastSubscriber: a pattern is listed by every live
// topic it matches, existing or created later, while it has subscribers;
// once its last one closes (or a subscription refused gives it back), no
// topic lists it, a topic created afterwards does not get it, and the same
// pattern subscribed again is a new one.
func TestPatternGoesWithItsLastSubscriber(t *testing.T) {
	t.Parallel()
	r := New(Options{Size: 16, MaxTopics: 4})
	defer r.Close()
	expect := func(topic string, want ...string) {
		t.Helper()
		if got := patternNames(t, r, topic); !slices.Equal(got, want) {
			t.Fatalf("topic %q lists %q, want %q", topic, got, want)
		}
	}
	if _, err := r.Publish("a.x", nil); err != nil {
		t.Fatal(err)
	}
	s1, _ := r.Subscribe("a.*")
	s2, _ := r.Subscribe("a.*", "b", "a.>")
	expect("a.x", "a.*", "a.>")
	expect("b")
	if _, err := r.Publish("a.y.z", nil); err != nil { // created later
		t.Fatal(err)
	}
	expect("a.y.z", "a.>")
	first, _ := r.topics.patterns.Load("a.*")
	if p := first.(*Topic); p.subs != 2 || !p.pattern {
		t.Fatalf("a.*: %d subscribers, pattern %v; want 2, true", p.subs, p.pattern)
	}
	_ = s1.Close()
	expect("a.x", "a.*", "a.>")
	_ = s2.Close()
	expect("a.x")
	expect("a.y.z")
	expect("b")
	if _, ok := r.topics.patterns.Load("a.*"); ok {
		t.Fatal("a.* still live after its last subscriber closed")
	}
	if _, err := r.Publish("a.w", nil); err != nil {
		t.Fatal(err)
	}
	expect("a.w")
	s3, _ := r.Subscribe("a.*")
	defer s3.Close()
	again, _ := r.topics.patterns.Load("a.*")
	if again == first {
		t.Fatal("a.* subscribed again is the pattern that went")
	}
	expect("a.x", "a.*")
	expect("a.w", "a.*")
	if r.Topics() != 4 {
		t.Fatalf("Topics: %d, want 4 (patterns are not topics)", r.Topics())
	}
	// The table is full, and each topic has a subscriber: a subscription
	// to a pattern and a new topic is refused, and gives the pattern back.
	held := make([]*Subscriber, 0, 4)
	for _, name := range []string{"a.x", "a.y.z", "a.w", "b"} {
		sub, err := r.Subscribe(name)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, sub)
	}
	if _, err := r.Subscribe("c.*", "c"); err == nil {
		t.Fatal("a fifth topic in a full table of topics with subscribers: no error")
	}
	if _, ok := r.topics.patterns.Load("c.*"); ok {
		t.Fatal("c.* live after its subscription was refused")
	}
	for _, sub := range held {
		_ = sub.Close()
	}
	if got := r.TopicSleepers("a.*"); got != 0 || r.patternSleepers.Load() != 0 {
		t.Fatalf("sleepers: %d on a.*, %d on patterns; want 0", got, r.patternSleepers.Load())
	}
}

// TestPatternSubscriberForgetsReleasedTopics: a subscriber to a pattern
// keeps a position per topic it matched, but forgets the released topics it
// has read past: a long-lived subscriber to ">" on a ring whose topics come
// and go holds a bounded number of positions, and still counts exactly what
// it misses of the live ones.
func TestPatternSubscriberForgetsReleasedTopics(t *testing.T) {
	t.Parallel()
	r := New(Options{Size: 64, MaxTopics: 4})
	defer r.Close()
	sub, err := r.Subscribe(">")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	batch := make([]*Frame, 0, 64)
	for i := range 5000 {
		// Each new topic takes the place of an older one (MaxTopics 4).
		if _, err := r.Publish("t"+strconv.Itoa(i), []byte("x")); err != nil {
			t.Fatal(err)
		}
		var missed uint64
		if batch, missed = sub.Read(batch[:0]); len(batch) != 1 || missed != 0 {
			t.Fatalf("frame %d: read %d frames, missed %d", i, len(batch), missed)
		}
		if n := len(sub.plast); n > 200 {
			t.Fatalf("after %d topics: %d positions held", i+1, n)
		}
	}
	// The live topics are still counted: miss two frames of one of them.
	for range 66 {
		if _, err := r.Publish("t4999", []byte("y")); err != nil {
			t.Fatal(err)
		}
	}
	if _, missed := sub.Read(batch[:0]); missed != 2 {
		t.Fatalf("missed %d of a live topic, want 2", missed)
	}
}

package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// prefix is a test filter: the events that start with it.
type prefix string

func (p prefix) Key() string { return "prefix:" + string(p) }

// prefixes is a Matcher over prefix filters, counting its evaluations.
type prefixes struct {
	list  []prefix
	calls *atomic.Int64
}

func (m prefixes) Match(event []byte, _ uint64, dst []int) []int {
	m.calls.Add(1)
	for i, p := range m.list {
		if strings.HasPrefix(string(event), string(p)) {
			dst = append(dst, i)
		}
	}
	return dst
}

// filterRing returns a ring whose filters are prefixes, and the count of
// their evaluations (each Match call of any of their Matchers).
func filterRing(tb testing.TB, opts fanout.Options) (*fanout.Ring, *atomic.Int64) {
	tb.Helper()
	calls := new(atomic.Int64)
	opts.Matcher = func(fs []fanout.Filter) fanout.Matcher {
		m := prefixes{calls: calls}
		for _, f := range fs {
			m.list = append(m.list, f.(prefix)) //nolint:forcetypeassert // only prefixes here
		}
		return m
	}
	return newRing(tb, opts), calls
}

// filtered returns a subscriber with a prefix filter, closed when the test
// ends.
func filtered(tb testing.TB, r *fanout.Ring, p string, topics ...string) *fanout.Subscriber {
	tb.Helper()
	sub, err := r.SubscribeFilter(prefix(p), topics...)
	if err != nil {
		tb.Fatalf("SubscribeFilter(%q, %q): %v", p, topics, err)
	}
	tb.Cleanup(func() { _ = sub.Close() })
	return sub
}

// publishEvents publishes one frame per event on topic, its event and bytes
// the same.
func publishEvents(tb testing.TB, r *fanout.Ring, topic string, events ...string) {
	tb.Helper()
	for _, ev := range events {
		res, err := r.Reserve(topic, 1)
		if err != nil {
			tb.Fatal(err)
		}
		r.Commit(res, fanout.Message{Data: []byte(ev), Event: []byte(ev)})
	}
}

// TestFilterSelects: a filtered subscriber receives, in order, the frames of
// its topics its filter selects, and broadcast frames; nothing else. It
// counts the frames of its topics its filter turned away.
func TestFilterSelects(t *testing.T) {
	t.Parallel()
	r, _ := filterRing(t, fanout.Options{Size: 64})
	errs := filtered(t, r, "err", "player")
	all := filtered(t, r, "err") // every topic
	pat := filtered(t, r, "err", "player.*")
	plain := subscribe(t, r, "player")
	publishEvents(t, r, "player", "err1", "ok1", "err2")
	publishEvents(t, r, "other", "err3")
	publishEvents(t, r, "player.a", "err4", "ok2")
	publishEvents(t, r, "", "bcast")
	publishEvents(t, r, "player", "ok3", "err5")
	for _, c := range []struct {
		name     string
		sub      *fanout.Subscriber
		want     []string
		turned   uint64
		filtered bool
	}{
		{"topic", errs, []string{"err1", "err2", "bcast", "err5"}, 2, true},
		{"every topic", all, []string{"err1", "err2", "err3", "err4", "bcast", "err5"}, 3, true},
		{"pattern", pat, []string{"err4", "bcast"}, 1, true},
		{"no filter", plain, []string{"err1", "ok1", "err2", "bcast", "ok3", "err5"}, 0, false},
	} {
		got, missed := readAll(c.sub)
		if !equal(got, c.want) || missed != 0 {
			t.Errorf("%s: got %v, missed %d; want %v, none missed", c.name, got, missed, c.want)
		}
		if n := c.sub.FilteredOut(); n != c.turned {
			t.Errorf("%s: FilteredOut() = %d, want %d", c.name, n, c.turned)
		}
	}
}

// TestFilterManyGroupsInAFrame: a frame that many groups match, created
// in between groups it does not match, reaches exactly the subscribers of
// the groups it matches, before and after the live filters are compiled
// together, and after some of the groups went.
func TestFilterManyGroupsInAFrame(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r, _ := filterRing(t, fanout.Options{Size: 256})
		const event = "abcdefghijklmnopqrstuvwxyz"
		type sub struct {
			prefix string
			s      *fanout.Subscriber
		}
		var subs []sub
		for i := 1; i <= len(event); i++ {
			// One group that the event matches, then one it does not.
			subs = append(subs, sub{event[:i], filtered(t, r, event[:i], "t")},
				sub{event[:i-1] + "_", filtered(t, r, event[:i-1]+"_", "t")})
		}
		check := func(when string, events ...string) {
			t.Helper()
			for _, sb := range subs {
				if sb.s == nil {
					continue
				}
				var want []string
				for _, e := range events {
					if strings.HasPrefix(e, sb.prefix) {
						want = append(want, e)
					}
				}
				if got, missed := readAll(sb.s); !equal(got, want) || missed != 0 {
					t.Errorf("%s: %q got %v, missed %d; want %v", when, sb.prefix, got, missed, want)
				}
			}
		}
		events := []string{event, event[:10], "zzz", event[:3] + "_", event}
		publishEvents(t, r, "t", events...)
		check("evaluated apart", events...)
		time.Sleep(time.Second) // the compilation runs
		publishEvents(t, r, "t", events...)
		check("compiled", events...)
		for i := range subs {
			if i%3 == 0 {
				_ = subs[i].s.Close()
				subs[i].s = nil
			}
		}
		publishEvents(t, r, "t", events...)
		check("some gone", events...)
		time.Sleep(time.Second)
		publishEvents(t, r, "t", events...)
		check("recompiled", events...)
	})
}

// TestFilterGroupsAreShared: subscribers with the same filter and topics
// share one group; once the live filters are compiled (in the background,
// soon after they change), a message costs one evaluation for every group at
// once, however many subscribers there are; groups go with their last
// subscriber. In a synctest bubble: the compilation's delay passes at once.
func TestFilterGroupsAreShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, calls := filterRing(t, fanout.Options{Size: 1024})
		subs := make([]*fanout.Subscriber, 0, 100)
		for i := range 100 {
			subs = append(subs, filtered(t, r, []string{"a", "b", "c"}[i%3], "t"))
		}
		other := filtered(t, r, "a", "u") // same filter, other topic: its own group
		if n := r.Filters(); n != 4 {
			t.Fatalf("Filters() = %d, want 4", n)
		}
		time.Sleep(time.Second) // the compilation runs
		calls.Store(0)
		publishEvents(t, r, "t", "a1", "b1", "c1", "d1", "a2")
		if n := calls.Load(); n != 5 {
			t.Fatalf("%d evaluations for 5 messages, want 5", n)
		}
		for i, sub := range subs {
			got, _ := readAll(sub)
			want := map[int][]string{0: {"a1", "a2"}, 1: {"b1"}, 2: {"c1"}}[i%3]
			if !equal(got, want) {
				t.Fatalf("subscriber %d got %v, want %v", i, got, want)
			}
		}
		if got, _ := readAll(other); len(got) != 0 {
			t.Fatalf("subscriber to another topic got %v", got)
		}
		for _, sub := range subs {
			_ = sub.Close()
		}
		if n := r.Filters(); n != 1 {
			t.Fatalf("Filters() = %d after closing all but one group, want 1", n)
		}
		_ = other.Close()
		time.Sleep(time.Second)
		calls.Store(0)
		publishEvents(t, r, "t", "a3")
		if n := r.Filters(); n != 0 || calls.Load() != 0 {
			t.Fatalf("Filters() = %d, %d evaluations after the last filter went; want 0 and 0", n, calls.Load())
		}
	})
}

// TestFilterCompilation: groups joined since the last compilation are
// evaluated apart, at most maxPending of them (the join that would make
// more compiles at once), and groups that left are dropped; every frame
// reaches exactly its subscribers meanwhile. In a synctest bubble.
func TestFilterCompilation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, calls := filterRing(t, fanout.Options{Size: 4096})
		subs := make([]*fanout.Subscriber, 0, 40)
		for i := range 40 { // more than maxPending, with no time passing
			subs = append(subs, filtered(t, r, fmt.Sprintf("p%02d-", i), "t"))
		}
		calls.Store(0)
		publishEvents(t, r, "t", "p05-x")
		if n := calls.Load(); n < 1 || n > 1+32 {
			t.Fatalf("%d evaluations of one message with 40 new groups, want 1 to 33", n)
		}
		if got, _ := readAll(subs[5]); !equal(got, []string{"p05-x"}) {
			t.Fatalf("got %v, want [p05-x]", got)
		}
		_ = subs[5].Close() // left, still compiled
		publishEvents(t, r, "t", "p05-y", "p39-z")
		time.Sleep(time.Second)
		calls.Store(0)
		publishEvents(t, r, "t", "p39-w")
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d evaluations once compiled, want 1", n)
		}
		if got, _ := readAll(subs[39]); !equal(got, []string{"p39-z", "p39-w"}) {
			t.Fatalf("got %v, want [p39-z p39-w]", got)
		}
		if r.Filters() != 39 {
			t.Fatalf("Filters() = %d, want 39", r.Filters())
		}
	})
}

// TestFilterWakesOnlyForItsFrames: a filtered subscriber asleep is not woken
// by frames of its topics its filter turns away, nor by other topics'; it is
// by a frame it receives, and by a broadcast frame. In a synctest bubble:
// synctest.Wait lets every wake-up happen before looking.
func TestFilterWakesOnlyForItsFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := filterRing(t, fanout.Options{Size: 64})
		sub := filtered(t, r, "err", "player")
		// A failure leaves a Wait blocked: release it first, or the bubble
		// panics and the test binary dies, hiding the other tests' results.
		defer sub.Interrupt()
		for _, c := range []struct {
			topic, event string
			wakes        bool
		}{
			{"player", "ok", false},
			{"video", "err", false},
			{"player", "err", true},
			{"", "bcast", true},
		} {
			woke := make(chan error, 1)
			go func() { woke <- sub.Wait(context.Background(), time.Minute) }()
			synctest.Wait()
			publishEvents(t, r, c.topic, c.event)
			synctest.Wait()
			select {
			case err := <-woke:
				if !c.wakes {
					t.Fatalf("woken (%v) by %q on %q", err, c.event, c.topic)
				}
			default:
				if c.wakes {
					t.Fatalf("not woken by %q on %q", c.event, c.topic)
				}
				time.Sleep(time.Minute) // the Wait times out
				if err := <-woke; !errors.Is(err, fanout.ErrTimeout) {
					t.Fatalf("Wait: %v, want ErrTimeout", err)
				}
			}
			readAll(sub)
		}
	})
}

// TestFilterMissedIsExact: a filtered subscriber that falls a ring behind is
// told exactly how many frames for it it missed, not how many frames of its
// topics; one closed while behind counts them in Missed.
func TestFilterMissedIsExact(t *testing.T) {
	t.Parallel()
	r, _ := filterRing(t, fanout.Options{Size: 8})
	sub := filtered(t, r, "x", "t")
	stuck := filtered(t, r, "x", "t")
	var want []string
	for i := range 30 {
		ev := "y" + string(rune('a'+i))
		if i%3 == 0 {
			ev = "x" + string(rune('a'+i))
			if i >= 30-8 {
				want = append(want, ev)
			}
		}
		publishEvents(t, r, "t", ev)
	}
	// Of the 10 frames for it (i = 0, 3, ... 27), the last 8 frames held
	// (i = 22..29) hold 3 (24, 27 and... 22 is not one): 7 missed.
	got, missed := readAll(sub)
	if !equal(got, want) || missed != uint64(10-len(want)) {
		t.Fatalf("got %v, missed %d; want %v, missed %d", got, missed, want, 10-len(want))
	}
	before := r.Missed()
	_ = stuck.Close()
	if n := stuck.Missed(); n != uint64(10-len(want)) {
		t.Fatalf("closed while behind: Missed() = %d, want %d", n, 10-len(want))
	}
	if d := r.Missed() - before; d != uint64(10-len(want)) {
		t.Fatalf("the ring's Missed grew by %d, want %d", d, 10-len(want))
	}
}

// TestFilterCreatedWhileFramesInFlight: a frame committed against the filters
// alive before a group was created, and made visible after its subscriber
// started, is evaluated for the new group by the sequencer: it wakes the
// subscriber, which receives it, and counts it if it misses it.
func TestFilterCreatedWhileFramesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := filterRing(t, fanout.Options{Size: 64})
		first, err := r.Reserve("t", 1) // holds back what comes after it
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.Reserve("t", 1)
		if err != nil {
			t.Fatal(err)
		}
		r.Commit(second, fanout.Message{Data: []byte("x2"), Event: []byte("x2")}) // no filter yet
		sub := filtered(t, r, "x", "t")
		defer sub.Interrupt() // a failure leaves the Wait blocked (see above)
		woke := make(chan error, 1)
		go func() { woke <- sub.Wait(context.Background(), time.Minute) }()
		synctest.Wait()
		r.Commit(first, fanout.Message{Data: []byte("y1"), Event: []byte("y1")})
		synctest.Wait()
		select {
		case err := <-woke:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("not woken by a frame committed before its group existed")
		}
		publishEvents(t, r, "t", "y3", "x4")
		got, missed := readAll(sub)
		if want := []string{"x2", "x4"}; !equal(got, want) || missed != 0 {
			t.Fatalf("got %v, missed %d; want %v", got, missed, want)
		}
	})
}

// TestFilterResume: a filtered subscriber resuming after a key receives the
// frames after it its filter selects, also those made visible before any
// subscriber had its filter, then new ones.
func TestFilterResume(t *testing.T) {
	t.Parallel()
	r, _ := filterRing(t, fanout.Options{Size: 64})
	publishEvents(t, r, "t", "x1", "y2", "x3", "y4", "x5")
	early := filtered(t, r, "x", "t") // its group exists from here
	publishEvents(t, r, "t", "x6", "y7")
	sub, res, err := r.SubscribeFilterAfter(1, prefix("x"), "t")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	publishEvents(t, r, "t", "x8")
	if res.Status != fanout.ResumeExact {
		t.Fatalf("resume status %v, want exact", res.Status)
	}
	got, missed := readAll(sub)
	if want := []string{"x3", "x5", "x6", "x8"}; !equal(got, want) || missed != 0 {
		t.Fatalf("got %v, missed %d; want %v", got, missed, want)
	}
	if got, _ := readAll(early); !equal(got, []string{"x6", "x8"}) {
		t.Fatalf("the first subscriber got %v, want [x6 x8]", got)
	}
}

// TestFilterReadEvaluatesOnlyFramesBeforeItsGroup: Read evaluates a
// subscriber's filter itself only for the frames made visible before its
// group existed (which a resumed subscriber reads); a frame evaluated for its
// group, selected or turned away, costs Read no evaluation, however many
// subscribers share the group.
func TestFilterReadEvaluatesOnlyFramesBeforeItsGroup(t *testing.T) {
	t.Parallel()
	r, calls := filterRing(t, fanout.Options{Size: 64})
	publishEvents(t, r, "t", "x1", "y2")
	subs := []*fanout.Subscriber{filtered(t, r, "x", "t"), filtered(t, r, "x", "t")}
	resumed, _, err := r.SubscribeFilterAfter(0, prefix("x"), "t") // from x1, in the same group
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	publishEvents(t, r, "t", "y3", "x4", "y5", "y6", "x7")
	calls.Store(0)
	for i, sub := range subs {
		if got, _ := readAll(sub); !equal(got, []string{"x4", "x7"}) || sub.FilteredOut() != 3 {
			t.Fatalf("subscriber %d got %v, %d filtered out; want [x4 x7], 3", i, got, sub.FilteredOut())
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d evaluations reading the frames evaluated for the group, want 0", n)
	}
	if got, _ := readAll(resumed); !equal(got, []string{"x1", "x4", "x7"}) || resumed.FilteredOut() != 4 {
		t.Fatalf("the resumed subscriber got %v, %d filtered out; want [x1 x4 x7], 4", got, resumed.FilteredOut())
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d evaluations reading two frames from before the group, want 2", n)
	}
}

// TestFilterLimits: without a Matcher, a ring refuses filters; with one, at
// most MaxFilters groups are alive, and a known one is always joined.
func TestFilterLimits(t *testing.T) {
	t.Parallel()
	plain := newRing(t, fanout.Options{})
	if _, err := plain.SubscribeFilter(prefix("x")); err == nil {
		t.Fatal("a ring without a Matcher accepted a filter")
	}
	if plain.Subscribers() != 0 || plain.Topics() != 0 {
		t.Fatalf("a refused subscriber left %d subscribers, %d topics", plain.Subscribers(), plain.Topics())
	}
	r, _ := filterRing(t, fanout.Options{MaxFilters: 2})
	filtered(t, r, "a", "t")
	filtered(t, r, "b", "t")
	if _, err := r.SubscribeFilter(prefix("c"), "t"); !errors.Is(err, fanout.ErrTooManyFilters) {
		t.Fatalf("a third filter: %v, want ErrTooManyFilters", err)
	}
	filtered(t, r, "a", "t")
	if n := r.Filters(); n != 2 {
		t.Fatalf("Filters() = %d, want 2", n)
	}
}

package server_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// firstID posts the first event of a fresh server, {"n":1}, with the given
// query, and returns the prefix of its id: event n of the run then has the
// id prefix+n.
func firstID(tb testing.TB, ts *testServer, query string) string {
	tb.Helper()
	s := ts.open(tb, query)
	s.greeting(tb)
	ts.mustPostTo(tb, query, `{"n":1}`)
	b := s.nextEvent(tb)
	prefix, n := splitID(tb, b.id)
	if n != 1 {
		tb.Fatalf("first event of a fresh server has id %q, want number 1", b.id)
	}
	s.close()
	return prefix
}

// postRange posts events {"n":from} .. {"n":to} with the given query.
func postRange(tb testing.TB, ts *testServer, query string, from, to int) {
	tb.Helper()
	for n := from; n <= to; n++ {
		ts.mustPostTo(tb, query, fmt.Sprintf(`{"n":%d}`, n))
	}
}

// expectEvents reads events and checks their bodies' n, in order, and that
// event n has the id prefix+n.
func expectEvents(tb testing.TB, s *sseStream, prefix string, ns ...int) {
	tb.Helper()
	for _, want := range ns {
		b := s.nextEvent(tb)
		if b.isGap() {
			tb.Fatalf("got a gap %s, want event %d", b.data, want)
		}
		if got := eventN(tb, b); got != want || b.id != prefix+strconv.Itoa(want) {
			tb.Fatalf("got event %d with id %q, want event %d with id %s%d", got, b.id, want, prefix, want)
		}
	}
}

// expectLive checks that nothing else is replayed: the next event is one
// posted now.
func expectLive(tb testing.TB, ts *testServer, s *sseStream, query string, n int) {
	tb.Helper()
	ts.mustPostTo(tb, query, fmt.Sprintf(`{"n":%d}`, n))
	b := s.nextEvent(tb)
	if b.isGap() || eventN(tb, b) != n {
		tb.Fatalf("got %q, want the live event %d", b.raw, n)
	}
}

// TestResumeAcrossDroppedConnections: while several producers post, a
// listener reads a few events, drops its connection and reconnects with the
// id of the last event it read, again and again. What it read over all its
// connections is every event for it exactly once, in each producer's order,
// with no gap event and strictly increasing ids; on every topic, one topic or
// two, with each streamer.
func TestResumeAcrossDroppedConnections(t *testing.T) {
	t.Parallel()
	const producers, perProducer = 6, 100
	topicOf := func(p int) string { return []string{"a", "b", "c"}[p%3] }
	for _, streamer := range streamers {
		for _, tc := range []struct {
			name   string
			topics []string // nil: every topic
		}{
			{"every topic", nil},
			{"one topic", []string{"a"}},
			{"two topics", []string{"a", "b"}},
		} {
			t.Run(fmt.Sprintf("%s/%s", streamer, tc.name), func(t *testing.T) {
				t.Parallel()
				ts := start(t, func(c *server.Config) {
					c.Heartbeat = time.Hour
					c.Streamer = streamer
				})
				query := url.Values{"topic": tc.topics}.Encode()
				wanted := func(p int) bool { return tc.topics == nil || slices.Contains(tc.topics, topicOf(p)) }
				want := 0
				for p := range producers {
					if wanted(p) {
						want += perProducer
					}
				}

				// The first connection is open before anything is posted.
				s := ts.open(t, query)
				s.greeting(t)

				var wg sync.WaitGroup
				defer wg.Wait()
				var producing atomic.Int32 // producers still posting
				producing.Store(producers)
				for p := range producers {
					wg.Go(func() {
						defer producing.Add(-1)
						for n := range perProducer {
							body := fmt.Sprintf(`{"p":%d,"n":%d}`, p, n)
							if r := ts.postTo(t, "topic="+topicOf(p), "application/json", body); r.status != http.StatusOK {
								t.Errorf("POST %s: %d %s", body, r.status, r.body)
								return
							}
							time.Sleep(time.Millisecond) // spread the posts over the reconnections
						}
					})
				}

				rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
				next := make([]int, producers)
				var lastID string
				var lastNum uint64
				connections, whileProducing := 1, 0
				for got := 0; got < want; {
					if connections > 1 {
						if producing.Load() > 0 {
							whileProducing++
						}
						s = ts.open(t, query, "Last-Event-ID", lastID)
						s.greeting(t)
					}
					for k := 1 + rng.IntN(30); k > 0 && got < want; k-- {
						b := s.nextEvent(t)
						if b.isGap() {
							t.Fatalf("connection %d, after %d events: gap %s", connections, got, b.data)
						}
						if _, num := splitID(t, b.id); num <= lastNum {
							t.Fatalf("connection %d: id %q after number %d", connections, b.id, lastNum)
						} else {
							lastNum = num
						}
						var e seqEvent
						if err := json.Unmarshal([]byte(b.data), &e); err != nil {
							t.Fatalf("event %q: %v", b.raw, err)
						}
						if !wanted(e.P) {
							t.Fatalf("connection %d: event of producer %d on topic %s", connections, e.P, topicOf(e.P))
						}
						if e.N != next[e.P] {
							t.Fatalf("connection %d: producer %d: got event %d, want %d (a duplicate or a loss)",
								connections, e.P, e.N, next[e.P])
						}
						next[e.P]++
						got++
						lastID = b.id
					}
					s.close() // drop the connection, maybe with events already sent to it
					connections++
				}
				t.Logf("%d events over %d connections, %d of them opened while producers posted",
					want, connections-1, whileProducing)
				if whileProducing == 0 {
					t.Error("no reconnection while producers posted: the test tested little")
				}
			})
		}
	}
}

// TestResumeFirstConnectionQuery: a first connection (no Last-Event-ID
// header: EventSource cannot set it) resumes with the lastEventId query
// parameter; the header, sent by a reconnecting EventSource, wins over it.
func TestResumeFirstConnectionQuery(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	prefix := firstID(t, ts, "")
	postRange(t, ts, "", 2, 6)

	s := ts.open(t, "lastEventId="+prefix+"3")
	s.greeting(t)
	expectEvents(t, s, prefix, 4, 5, 6)
	expectLive(t, ts, s, "", 7)

	both := ts.open(t, "lastEventId="+prefix+"2", "Last-Event-ID", prefix+"5")
	both.greeting(t)
	expectEvents(t, both, prefix, 6, 7)

	spaced := ts.open(t, "", "Last-Event-ID", " "+prefix+"6 ")
	spaced.greeting(t)
	expectEvents(t, spaced, prefix, 7)
}

// TestResumeOlderThanBuffer: with a ring of 16 holding events 25..40 of a
// run, a listener resuming after an id no longer held is first told, with a
// gap event, how many events it missed (exactly, on every topic; null, on
// topics), then gets what is held, then the live stream. One resuming after
// the event just before the oldest held missed nothing and is told nothing.
func TestResumeOlderThanBuffer(t *testing.T) {
	t.Parallel()
	const size, last = 16, 40
	odd := func(from, to int) []int {
		var ns []int
		for n := from; n <= to; n++ {
			if n%2 == 1 {
				ns = append(ns, n)
			}
		}
		return ns
	}
	for _, tc := range []struct {
		name   string
		query  string // of the listener
		after  int    // the id it resumes after
		missed int64  // the gap's missed count: -1 null, -2 no gap
		want   []int  // the events then replayed
	}{
		{"every topic/long gone", "", 3, 21, seq(25, last)},
		{"every topic/the first event", "", 1, 23, seq(25, last)},
		{"every topic/just before the oldest held", "", 24, -2, seq(25, last)},
		{"every topic/the oldest held", "", 25, -2, seq(26, last)},
		{"every topic/the newest", "", last, -2, nil},
		{"topic/long gone", "topic=a", 3, -1, odd(25, last)},
		{"topic/just before the oldest held", "topic=a", 24, -2, odd(25, last)},
		{"topic/the oldest held", "topic=a", 25, -2, odd(26, last)},
		{"topic/the newest of its topic", "topic=a", 39, -2, nil},
		{"two topics/long gone", "topic=a&topic=b", 3, -1, seq(25, last)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := startBuffered(t, size, func(c *server.Config) { c.Heartbeat = time.Hour })
			// Odd events on topic a, even ones on b.
			prefix := firstID(t, ts, "topic=a")
			for n := 2; n <= last; n++ {
				ts.mustPostTo(t, "topic="+[]string{"b", "a"}[n%2], fmt.Sprintf(`{"n":%d}`, n))
			}
			s := ts.open(t, tc.query, "Last-Event-ID", prefix+strconv.Itoa(tc.after))
			s.greeting(t)
			if tc.missed != -2 {
				if got := gapMissed(t, s.nextEvent(t)); got != tc.missed {
					t.Fatalf("gap: missed %d, want %d (-1: null)", got, tc.missed)
				}
			}
			expectEvents(t, s, prefix, tc.want...)
			expectLive(t, ts, s, "topic=a", last+1)
		})
	}
}

// seq returns from, from+1, ..., to.
func seq(from, to int) []int {
	ns := make([]int, 0, to-from+1)
	for n := from; n <= to; n++ {
		ns = append(ns, n)
	}
	return ns
}

// TestResumeForeignID: an id given out by another instance, or by this
// service before a restart, is never mapped onto one of this run's events,
// even when its number is one this run gave out too: the listener gets a gap
// of unknown size, then the live stream, nothing replayed.
func TestResumeForeignID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		restart bool // stop the first server before starting the second
	}{
		{"other instance", false},
		{"restarted", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			config := func(c *server.Config) { c.Heartbeat = time.Hour }
			old := start(t, config)
			oldPrefix := firstID(t, old, "")
			postRange(t, old, "", 2, 5)
			if tc.restart {
				if err := old.stop(); err != nil {
					t.Fatal(err)
				}
			}
			ts := start(t, config)
			prefix := firstID(t, ts, "")
			postRange(t, ts, "", 2, 5)
			if prefix == oldPrefix {
				t.Fatalf("two runs share the id prefix %q", prefix)
			}
			for _, query := range []string{"", "topic=default"} {
				s := ts.open(t, query, "Last-Event-ID", oldPrefix+"2")
				s.greeting(t)
				if got := gapMissed(t, s.nextEvent(t)); got != -1 {
					t.Fatalf("%q: gap missed %d, want null", query, got)
				}
				expectLive(t, ts, s, "", 100)
				s.close()
			}
		})
	}
}

// TestResumeMalformedID: an id that is malformed, too long, of another
// space or never given out gets a gap of unknown size and the live stream,
// nothing replayed, whether it comes as a header or as the query parameter.
func TestResumeMalformedID(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	prefix := firstID(t, ts, "")
	postRange(t, ts, "", 2, 5)
	run := strings.TrimSuffix(strings.TrimPrefix(prefix, "r"), "-")
	ids := map[string]string{
		"garbage":               "garbage",
		"no run":                "r-3",
		"prefix only":           prefix,
		"number only":           "3",
		"leading zero":          prefix + "03",
		"zeros":                 prefix + "00",
		"non-digit":             prefix + "3a",
		"negative":              prefix + "-3",
		"plus sign":             prefix + "+3",
		"decimal":               prefix + "3.0",
		"hex":                   prefix + "0x3",
		"space inside":          prefix + " 3",
		"overflow":              prefix + "18446744073709551616",
		"21 digits":             prefix + "000000000000000000003",
		"41 characters":         prefix + strings.Repeat("9", 41-len(prefix)),
		"very long":             strings.Repeat("a", 4096),
		"wrong kind":            "s" + run + "-3",
		"upper-case kind":       "R" + run + "-3",
		"other run":             "r" + run + "0-3",
		"run truncated":         "r" + run[:len(run)-1] + "-3",
		"no dash":               "r" + run + "3",
		"underscore":            "r" + run + "_3",
		"non-ASCII":             "r" + run + "-\u0663",
		"far beyond":            prefix + "99999999",
		"zero: never given out": prefix + "0",
		"max uint64":            prefix + "18446744073709551615",
	}
	// The next id, not given out yet.
	next := ts.open(t, "", "Last-Event-ID", prefix+"6")
	next.greeting(t)
	if b := next.nextEvent(t); !b.isGap() || b.data != `{"missed":null}` {
		t.Errorf("the next id, not given out yet: first event %q, want a gap of unknown size", b.raw)
	}
	next.close()
	n := 100
	for name, id := range ids {
		for _, asQuery := range []bool{false, true} {
			var s *sseStream
			if asQuery {
				s = ts.open(t, "lastEventId="+url.QueryEscape(id))
			} else {
				s = ts.open(t, "", "Last-Event-ID", id)
			}
			s.greeting(t)
			b := s.nextEvent(t)
			if !b.isGap() || b.data != `{"missed":null}` {
				t.Errorf("%s (%.50q, query %v): first event %q, want a gap of unknown size", name, id, asQuery, b.raw)
				s.close()
				continue
			}
			n++
			ts.mustPost(t, fmt.Sprintf(`{"n":%d}`, n))
			if b := s.nextEvent(t); b.isGap() || eventN(t, b) != n {
				t.Errorf("%s (%.50q, query %v): after the gap got %q, want the live event %d", name, id, asQuery, b.raw, n)
			}
			s.close()
		}
	}
}

// TestReplayOff: with Replay off (-replay=false), the original behaviour: a
// listener gets the live stream whatever Last-Event-ID it sends, with no
// replay and no gap event; events still carry ids.
func TestReplayOff(t *testing.T) {
	t.Parallel()
	ts := startBuffered(t, 16, func(c *server.Config) {
		c.Heartbeat = time.Hour
		c.Replay = false
	})
	prefix := firstID(t, ts, "")
	postRange(t, ts, "", 2, 40)
	n := 100
	for _, id := range []string{prefix + "38", prefix + "3", prefix + "999", "r0-1", "garbage", ""} {
		for _, query := range []string{"", "lastEventId=" + url.QueryEscape(id)} {
			var s *sseStream
			if query == "" {
				s = ts.open(t, "", "Last-Event-ID", id)
			} else {
				s = ts.open(t, query)
			}
			s.greeting(t)
			n++
			ts.mustPost(t, fmt.Sprintf(`{"n":%d}`, n))
			b := s.nextEvent(t)
			if b.isGap() || eventN(t, b) != n {
				t.Fatalf("id %q (%s): got %q, want the live event %d", id, query, b.raw, n)
			}
			if p, _ := splitID(t, b.id); p != prefix {
				t.Fatalf("id prefix %q, want %q", p, prefix)
			}
			s.close()
		}
	}
}

// TestResumeOnSeveralTopics: a listener on two topics that drops its
// connection and resumes gets exactly the events of its topics it had not
// read, whichever topic its last event was on, and none of the other
// topics'.
func TestResumeOnSeveralTopics(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	prefix := firstID(t, ts, "topic=a") // 1 on a
	topic := func(n int) string { return []string{"a", "b", "c"}[(n-1)%3] }
	for n := 2; n <= 12; n++ {
		ts.mustPostTo(t, "topic="+topic(n), fmt.Sprintf(`{"n":%d}`, n))
	}
	// Events on a: 1 4 7 10 13 ..., on b: 2 5 8 11 ..., on c: 3 6 9 12 ...
	for _, tc := range []struct {
		after int
		want  []int
	}{
		{1, []int{2, 4, 5, 7, 8, 10, 11}}, // after an a event
		{5, []int{7, 8, 10, 11}},          // after a b event
		{6, []int{7, 8, 10, 11}},          // after a c event (another topic's id)
		{11, nil},                         // after the newest of its topics
		{12, nil},                         // after the newest event
	} {
		s := ts.open(t, "topic=a&topic=b", "Last-Event-ID", prefix+strconv.Itoa(tc.after))
		s.greeting(t)
		expectEvents(t, s, prefix, tc.want...)
		s.quiet(t, 50*time.Millisecond)
		s.close()
	}
	// Live events of both topics follow a resumed stream, c's do not.
	s := ts.open(t, "topic=b&topic=a", "Last-Event-ID", prefix+"10")
	s.greeting(t)
	expectEvents(t, s, prefix, 11)
	for n := 13; n <= 18; n++ {
		ts.mustPostTo(t, "topic="+topic(n), fmt.Sprintf(`{"n":%d}`, n))
	}
	expectEvents(t, s, prefix, 13, 14, 16, 17)
}

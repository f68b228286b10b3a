package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// TestTopicFiltering: while producers post concurrently on several topics
// (and without a topic: the default one), a listener on one topic, on
// several and on none each receives exactly the events of its topics, once,
// in each producer's order; a listener on a topic nobody posts to receives
// nothing.
func TestTopicFiltering(t *testing.T) {
	t.Parallel()
	const perProducer = 150
	producerTopics := []string{"a", "b", "c", ""} // "": no topic parameter
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	listeners := []struct {
		name   string
		topics []string // nil: every topic
		s      *sseStream
	}{
		{name: "every topic"},
		{name: "one topic", topics: []string{"a"}},
		{name: "two topics", topics: []string{"b", "a"}},
		{name: "the default topic", topics: []string{server.DefaultTopic}},
		{name: "a topic named twice", topics: []string{"c", "c"}},
		{name: "a quiet topic", topics: []string{"quiet"}},
	}
	for i := range listeners {
		l := &listeners[i]
		l.s = ts.open(t, url.Values{"topic": l.topics}.Encode())
		l.s.greeting(t)
	}
	var wg sync.WaitGroup
	for p, topic := range producerTopics {
		wg.Go(func() {
			query := ""
			if topic != "" {
				query = "topic=" + topic
			}
			for n := range perProducer {
				body := fmt.Sprintf(`{"p":%d,"n":%d}`, p, n)
				if r := ts.postTo(t, query, "application/json", body); r.status != http.StatusOK {
					t.Errorf("POST %s: %d %s", body, r.status, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, l := range listeners {
		wants := func(p int) bool {
			topic := producerTopics[p]
			if topic == "" {
				topic = server.DefaultTopic
			}
			return l.topics == nil || slices.Contains(l.topics, topic)
		}
		next := make([]int, len(producerTopics))
		want := 0
		for p := range producerTopics {
			if wants(p) {
				want += perProducer
			}
		}
		for range want {
			b := l.s.nextEvent(t)
			var e seqEvent
			if err := json.Unmarshal([]byte(b.data), &e); err != nil || b.event != "" {
				t.Fatalf("%s: event %q", l.name, b.raw)
			}
			if !wants(e.P) {
				t.Fatalf("%s: got an event of topic %q", l.name, producerTopics[e.P])
			}
			if e.N != next[e.P] {
				t.Fatalf("%s: producer %d: got event %d, want %d", l.name, e.P, e.N, next[e.P])
			}
			next[e.P]++
		}
	}
	// Nothing more: a marker posted on every listener's topic comes next.
	for _, topic := range []string{"a", "b", "c", server.DefaultTopic, "quiet"} {
		ts.mustPostTo(t, "topic="+topic, `{"marker":true}`)
	}
	for _, l := range listeners {
		n := 1
		if l.topics == nil {
			n = 5
		} else if len(l.topics) == 2 && l.topics[0] != l.topics[1] {
			n = 2
		}
		for range n {
			if b := l.s.nextEvent(t); !strings.HasPrefix(b.data, `{"marker":true,`) {
				t.Fatalf("%s: got %q, want the marker", l.name, b.raw)
			}
		}
	}
}

// TestQuietTopicIsNotToldOfOtherTopicsLaps: a listener on a quiet topic,
// while another topic laps the buffer many times, receives nothing (not a
// gap), and then its topic's next event with no gap before it; nobody is
// counted as having missed anything.
func TestQuietTopicIsNotToldOfOtherTopicsLaps(t *testing.T) {
	t.Parallel()
	const size = 16
	ts := startBuffered(t, size, func(c *server.Config) { c.Heartbeat = time.Hour })
	quiet := ts.open(t, "topic=quiet")
	quiet.greeting(t)
	both := ts.open(t, "topic=quiet&topic=calm")
	both.greeting(t)
	ts.mustPostTo(t, "topic=quiet", `{"n":1}`)
	for _, s := range []*sseStream{quiet, both} {
		if b := s.nextEvent(t); eventN(t, b) != 1 {
			t.Fatalf("got %q, want event 1", b.raw)
		}
	}
	for n := range 10 * size {
		ts.mustPostTo(t, "topic=busy", fmt.Sprintf(`{"busy":%d}`, n))
	}
	ts.mustPostTo(t, "topic=calm", `{"n":2}`)
	ts.mustPostTo(t, "topic=quiet", `{"n":3}`)
	for _, tc := range []struct {
		s    *sseStream
		want []int
	}{{quiet, []int{3}}, {both, []int{2, 3}}} {
		for _, n := range tc.want {
			if b := tc.s.nextEvent(t); b.isGap() || eventN(t, b) != n {
				t.Fatalf("got %q, want event %d with no gap before it", b.raw, n)
			}
		}
	}
	if got := ts.ring.Missed(); got != 0 {
		t.Errorf("ring.Missed: %d, want 0", got)
	}
	if h := health(t, ts); h.EventsMissed != 0 {
		t.Errorf("events_missed: %d, want 0", h.EventsMissed)
	}
}

// TestTopicNames: topic names are 1 to 64 characters from [A-Za-z0-9._-],
// without empty dot segments; anything else is a 400 with a JSON error
// naming the parameter, for a producer and for a listener, and nothing is
// published.
func TestTopicNames(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	watcher := ts.open(t, "")
	watcher.greeting(t)
	valid := []string{"a", "A-Z_a.z-0.9", "-", "_", "a.b.c", "0", strings.Repeat("x", 64), "default"}
	for _, topic := range valid {
		l := ts.open(t, "topic="+url.QueryEscape(topic))
		l.greeting(t)
		ts.mustPostTo(t, "topic="+url.QueryEscape(topic), `{"valid":true}`)
		if b := l.nextEvent(t); !strings.HasPrefix(b.data, `{"valid":true,`) {
			t.Errorf("topic %q: listener got %q", topic, b.raw)
		}
		if b := watcher.nextEvent(t); !strings.HasPrefix(b.data, `{"valid":true,`) {
			t.Errorf("topic %q: listener to every topic got %q", topic, b.raw)
		}
		l.close()
	}
	// Listeners refused here go through a client of their own: a refused
	// listener's connection is another test's subject
	// (TestRefusedListenerConnection).
	getErr := func(query string) response {
		t.Helper()
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Get(ts.url + "/events?" + query)
		if err != nil {
			t.Fatalf("GET /events?%s: %v", query, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET /events?%s: %v", query, err)
		}
		return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
	}
	invalid := []string{"", ".", ".a", "a.", "a..b", "..", "a/b", "a b", "a+b", "*", ">", "a:b", "\u00e9",
		"a\x00", "a%", strings.Repeat("x", 65)}
	for _, topic := range invalid {
		query := "topic=" + url.QueryEscape(topic)
		checkError(t, ts.postTo(t, query, "application/json", `{"invalid":true}`), http.StatusBadRequest, `"topic"`)
		if topic == "*" || topic == ">" {
			continue // patterns: a listener may ask for them (TestPatternListener)
		}
		checkError(t, getErr(query), http.StatusBadRequest, `"topic"`)
		// One bad topic among good ones spoils the request.
		checkError(t, getErr("topic=a&"+query), http.StatusBadRequest, `"topic"`)
	}
	// A producer posts to one topic.
	checkError(t, ts.postTo(t, "topic=a&topic=b", "application/json", `{"invalid":true}`), http.StatusBadRequest, `"topic"`)
	ts.mustPost(t, `{"last":true}`)
	if b := watcher.nextEvent(t); !strings.HasPrefix(b.data, `{"last":true,`) {
		t.Fatalf("a refused event was published: %q", b.raw)
	}
}

// TestTopicLimit: with MaxTopics alive, all listened to, a POST that would
// create another topic gets a 503 JSON error and a listener that would gets
// 200, a retry hint within [Retry, 2*Retry] and the end of its stream, while
// existing topics and the default one keep working; once a topic has no
// listener, a new one takes its place at once.
func TestTopicLimit(t *testing.T) {
	t.Parallel()
	const retry = time.Second
	ts := startWith(t, func(c *server.Config) {
		c.Heartbeat = time.Hour
		c.Retry = retry
	}, fanout.Options{Size: 64, MaxTopics: 2, Permanent: []string{server.DefaultTopic}}, testLogHandler(t))
	// Listeners hold both topics alive: the janitor releases neither.
	onA, onB := ts.open(t, "topic=a"), ts.open(t, "topic=b")
	onA.greeting(t)
	onB.greeting(t)
	ts.mustPostTo(t, "topic=b", `{"n":1}`)

	checkError(t, ts.postTo(t, "topic=c", "application/json", `{"n":2}`), http.StatusServiceUnavailable, "topics")
	for _, query := range []string{"topic=c", "topic=a&topic=c"} {
		s := ts.open(t, query)
		if ct := s.resp.Header.Get("Content-Type"); s.resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
			t.Fatalf("%s over the topic limit: %d %s", query, s.resp.StatusCode, ct)
		}
		rest := s.waitEnd(t)
		if len(rest) != 1 || rest[0].isEvent() || rest[0].retry < retry.Milliseconds() || rest[0].retry > 2*retry.Milliseconds() {
			t.Fatalf("%s over the topic limit: got %+v, want a retry hint within [%v, %v] and the end", query, rest, retry, 2*retry)
		}
	}
	// Every attempt is counted once: as given a stream, or turned away.
	if h := health(t, ts); h.ListenersTotal != 2 || h.TurnedAwayBy["topics"] != 2 {
		t.Fatalf("listeners_total %d, turned away for topics %d; want 2 and 2", h.ListenersTotal, h.TurnedAwayBy["topics"])
	}
	// Existing topics, the default topic, and listeners to every topic,
	// are not affected.
	all := ts.open(t, "")
	all.greeting(t)
	ts.mustPostTo(t, "topic=a", `{"n":3}`)
	ts.mustPostTo(t, "", `{"n":4}`)
	for _, want := range []int{3, 4} {
		if b := all.nextEvent(t); eventN(t, b) != want {
			t.Fatalf("got %q, want event %d", b.raw, want)
		}
	}
	if b := onA.nextEvent(t); eventN(t, b) != 3 {
		t.Fatalf("got %q, want event 3", b.raw)
	}
	// Once a topic has no listener, a new one takes its place.
	onA.close()
	eventually(t, "the listener of a gone", func() bool { return ts.Listeners() == 2 })
	ts.mustPostTo(t, "topic=c", `{"n":5}`)
	if b := all.nextEvent(t); eventN(t, b) != 5 {
		t.Fatalf("got %q, want event 5", b.raw)
	}
}

// TestRefusedListenerConnection: a listener refused with an error status
// (a bad topic: 400; a missing listen token: 401) gets a response after
// which its connection is either closed by announcement ("Connection:
// close") or still served: the client's next request on that keep-alive
// connection (a POST, which clients do not retry) must get an answer.
func TestRefusedListenerConnection(t *testing.T) {
	t.Parallel()
	for _, streamer := range streamers {
		for _, tc := range []struct {
			name, query string
			status      int
		}{
			{"bad topic", "topic=a..b", http.StatusBadRequest},
			{"no listen token", "topic=a", http.StatusUnauthorized},
		} {
			t.Run(fmt.Sprintf("%s/%s", streamer, tc.name), func(t *testing.T) {
				t.Parallel()
				ts := start(t, func(c *server.Config) {
					c.Streamer = streamer
					if tc.status == http.StatusUnauthorized {
						c.ListenTokens = []string{"secret"}
					}
				})
				addr := strings.TrimPrefix(ts.url, "http://")
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(waitFor))
				br := bufio.NewReader(conn)
				get, _ := http.NewRequest(http.MethodGet, ts.url+"/events?"+tc.query, nil)
				if err := get.Write(conn); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, get)
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("GET: status %d, want %d", resp.StatusCode, tc.status)
				}
				if resp.Close {
					return // announced: the client opens a new connection
				}
				post, _ := http.NewRequest(http.MethodPost, ts.url+"/api/events", strings.NewReader(`{"n":1}`))
				post.Header.Set("Content-Type", "application/json")
				if err := post.Write(conn); err != nil {
					t.Fatalf("POST on the kept-alive connection: %v", err)
				}
				presp, err := http.ReadResponse(br, post)
				if err != nil {
					t.Fatalf("the %d to GET /events kept the connection alive, but the POST sent on it next got no answer: %v",
						tc.status, err)
				}
				_ = presp.Body.Close()
				if presp.StatusCode != http.StatusOK {
					t.Fatalf("POST on the kept-alive connection: status %d", presp.StatusCode)
				}
			})
		}
	}
}

// TestLaggingTopicListenerIsToldExactlyWhatItMissed: a listener on one topic
// that falls behind the buffer while another topic is as busy is told, in
// gap events, exactly how many of its own topic's events it missed, never
// the other topic's: what it received plus what it was told it missed is
// every event of its topic, in order.
func TestLaggingTopicListenerIsToldExactlyWhatItMissed(t *testing.T) {
	t.Parallel()
	const events = 400 // per topic; 25 MiB in all, more than the socket buffers hold
	ts := startBuffered(t, 16, func(c *server.Config) {
		c.WriteTimeout = time.Minute
		c.Heartbeat = time.Hour
	})
	conn, br := rawStreamQuery(t, ts, "topic=mine", 4096)
	eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
	pad := strings.Repeat("x", 32<<10)
	for n := range events {
		ts.mustPostTo(t, "topic=mine", fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
		ts.mustPostTo(t, "topic=other", fmt.Sprintf(`{"other":%d,"pad":%q}`, n, pad))
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	r := sseclient.NewReader(httputil.NewChunkedReader(br))
	readAccountedFor(t, r, events)
}

// TestProducersCannotFillTopics: producers posting to many new topics (a
// thousand, and more than the table holds) never make the default topic
// refuse events, nor a listener's new topic refuse it: topics without
// listeners make room at once.
func TestProducersCannotFillTopics(t *testing.T) {
	t.Parallel()
	ts := startWith(t, func(c *server.Config) { c.Heartbeat = time.Hour },
		fanout.Options{Size: 256, MaxTopics: 10, Permanent: []string{server.DefaultTopic}}, testLogHandler(t))
	held := ts.open(t, "topic=held")
	held.greeting(t)
	for i := range 1000 {
		ts.mustPostTo(t, fmt.Sprintf("topic=flood.%d", i), `{"n":0}`)
	}
	ts.mustPostTo(t, "", `{"n":1}`)
	ts.mustPostTo(t, "topic=held", `{"n":2}`)
	late := ts.open(t, "topic=late")
	late.greeting(t)
	ts.mustPostTo(t, "topic=late", `{"n":3}`)
	if b := held.nextEvent(t); eventN(t, b) != 2 {
		t.Fatalf("held: got %q, want event 2", b.raw)
	}
	if b := late.nextEvent(t); eventN(t, b) != 3 {
		t.Fatalf("late: got %q, want event 3", b.raw)
	}
	if h := health(t, ts); h.Topics > 11 || h.TurnedAway != 0 || h.EventsRejected != 0 {
		t.Fatalf("topics %d, turned away %d, rejected %d", h.Topics, h.TurnedAway, h.EventsRejected)
	}
}

// TestTopicsPerListener: a listener may ask for at most
// MaxListenerTopics topics (each counted once); past it, 400 naming the
// limit.
func TestTopicsPerListener(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.MaxListenerTopics = 3 })
	ok := ts.open(t, "topic=a&topic=b&topic=c&topic=a")
	ok.greeting(t)
	resp, err := ts.client.Get(ts.url + "/events?topic=a&topic=b&topic=c&topic=d")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	checkError(t, response{status: resp.StatusCode, header: resp.Header, body: string(body)},
		http.StatusBadRequest, "max-topics-per-listener")
}

// TestPatternListener: a listener asking for a topic pattern receives, in
// order, the events of every topic it matches (existing or created after it
// connected), each frame saying its topic, and not the others; it resumes
// after its last event id with the events of its topics it missed.
func TestPatternListener(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	ts.mustPostTo(t, "topic=player.a", `{"n":0}`) // the topic exists before
	s := ts.open(t, "topic=player.*")
	s.greeting(t)
	for n, topic := range []string{"player.a", "video", "player.b", "player.a.x", "player.c"} {
		ts.mustPostTo(t, "topic="+topic, fmt.Sprintf(`{"n":%d}`, n+1))
	}
	var last string
	for _, want := range []struct {
		n     int
		topic string
	}{{1, "player.a"}, {3, "player.b"}, {5, "player.c"}} {
		b := s.nextEvent(t)
		if eventN(t, b) != want.n || b.topic != want.topic {
			t.Fatalf("got %q, want event %d on %s", b.raw, want.n, want.topic)
		}
		if want.n == 3 {
			last = b.id
		}
	}
	s.close()
	ts.mustPostTo(t, "topic=player.d", `{"n":6}`)
	ts.mustPostTo(t, "topic=other", `{"n":7}`)
	again := ts.open(t, "topic=player.*", "Last-Event-ID", last)
	again.greeting(t)
	for _, want := range []int{5, 6} {
		if b := again.nextEvent(t); eventN(t, b) != want {
			t.Fatalf("resumed: got %q, want event %d", b.raw, want)
		}
	}
}

// TestLaggingPatternListenerIsToldExactlyWhatItMissed: a listener on a
// pattern that falls behind the buffer is told, in gap events, exactly how
// many events of its topics it missed, topics created after it connected
// included, never other topics' events.
func TestLaggingPatternListenerIsToldExactlyWhatItMissed(t *testing.T) {
	t.Parallel()
	const events = 400 // over its topics; far more than the socket buffers hold
	ts := startBuffered(t, 16, func(c *server.Config) {
		c.WriteTimeout = time.Minute
		c.Heartbeat = time.Hour
	})
	conn, br := rawStreamQuery(t, ts, "topic=mine.*", 4096)
	eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
	pad := strings.Repeat("x", 32<<10)
	for n := range events {
		// Its events on topics that appear as it lags, one in three.
		ts.mustPostTo(t, fmt.Sprintf("topic=mine.%d", n%3), fmt.Sprintf(`{"n":%d,"pad":%q}`, n, pad))
		ts.mustPostTo(t, "topic=other", fmt.Sprintf(`{"other":%d,"pad":%q}`, n, pad))
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	r := sseclient.NewReader(httputil.NewChunkedReader(br))
	// Misses are counted per topic, and told before the next event of that
	// topic: a gap event says how many of the following event's topic were
	// missed since that topic's previous event (topic n%3 has the events
	// n%3, n%3+3, ...).
	const topics = 3
	var next [topics]int // per topic, the index of the next event expected
	gaps, pending := 0, -1
	for done := 0; done < topics; {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("after %v: %v", next, err)
		}
		switch {
		case m.Comment:
		case m.Type == "gap":
			var g struct{ Missed int }
			if err := json.Unmarshal([]byte(m.Data), &g); err != nil || g.Missed < 1 || pending >= 0 {
				t.Fatalf("gap event %q (pending %d)", m.Data, pending)
			}
			pending = g.Missed
			gaps++
		default:
			var e struct{ N *int }
			if err := json.Unmarshal([]byte(m.Data), &e); err != nil || e.N == nil {
				t.Fatalf("event %.40q: not one of its topics' events", m.Data)
			}
			k, i := *e.N%topics, *e.N/topics
			want := next[k] + max(pending, 0)
			if i != want {
				t.Fatalf("topic mine.%d: got its event %d, want %d (gap %d, after %d gaps)", k, i, want, pending, gaps)
			}
			pending = -1
			next[k] = i + 1
			if next[k] == (events-k+topics-1)/topics {
				done++
			}
		}
	}
	if gaps == 0 {
		t.Fatal("the listener never lagged: the test did not test anything")
	}
}

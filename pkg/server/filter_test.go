package server_test

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// whereQuery returns the query of a listener with these where terms, each
// escaped as a browser would.
func whereQuery(terms ...string) string {
	v := url.Values{"where": terms}
	return v.Encode()
}

// TestFilterWhere: a listener with where terms receives exactly the events
// whose fields match, for each type of value, nested paths, the or/and of
// several terms, escaped keys and values, and user_ip. Each case's last
// event matches, so reading up to it shows every event delivered before it.
func TestFilterWhere(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	for _, c := range []struct {
		name   string
		terms  []string
		events []string // each gets "n": its index
		want   []int
		xff    string // X-Forwarded-For of the last event, "" for none
	}{
		{"string", []string{"type:error"},
			[]string{`"type":"error"`, `"type":"warn"`, `"type":"Error"`, `"type":["error"]`, `"type":"error"`}, []int{0, 4}, ""},
		{"number literal", []string{"code:404"},
			[]string{`"code":404`, `"code":404.0`, `"code":"404"`, `"code":4040`, `"code":{"x":404}`, `"code":404`}, []int{0, 2, 5}, ""},
		{"number text", []string{"n2:1e3"},
			[]string{`"n2":1000`, `"n2":1e3`}, []int{1}, ""},
		{"booleans", []string{"ok:false"},
			[]string{`"ok":true`, `"ok":false`, `"ok":"false"`, `"ok":0`, `"ok":false`}, []int{1, 2, 4}, ""},
		{"null", []string{"x:null"},
			[]string{`"x":null`, `"y":null`, `"x":"null"`, `"x":""`, `"x":null`}, []int{0, 2, 4}, ""},
		{"empty value", []string{"x:"},
			[]string{`"x":""`, `"x":null`, `"x":" "`, `"x":""`}, []int{0, 3}, ""},
		{"nested path, value with colons", []string{"media.id:urn:rts:1"},
			[]string{`"media":{"id":"urn:rts:1"}`, `"media.id":"urn:rts:1"`, `"media":"urn:rts:1"`,
				`"media":{"id":"urn:rts:2","x":{"id":"urn:rts:1"}}`, `"media":{"a":1,"id":"urn:rts:1"}`}, []int{0, 4}, ""},
		{"escaped dot in path", []string{`media\.id:1`},
			[]string{`"media":{"id":"1"}`, `"media.id":"1"`}, []int{1}, ""},
		{"escaped event keys and values", []string{`type:error`, `msg:a"b\c`},
			[]string{`"\u0074ype":"\u0065rror","msg":"a\"b\\c"`, `"type":"error","msg":"a\"b"`, `"type":"error","msg":"a\u0022b\u005cc"`},
			[]int{0, 2}, ""},
		{"unicode", []string{"name:café"},
			[]string{`"name":"cafe"`, `"name":"caf\u00e9"`, `"name":"café"`}, []int{1, 2}, ""},
		{"last duplicate key wins", []string{"k:2"},
			[]string{`"k":2,"k":1`, `"k":1,"k":2`}, []int{1}, ""},
		{"or on a path, and across paths", []string{"type:error", "type:warn", "media.id:1"},
			[]string{`"type":"error","media":{"id":"1"}`, `"type":"info","media":{"id":"1"}`, `"type":"warn","media":{"id":"2"}`,
				`"type":"warn"`, `"media":{"id":"1"}`, `"type":"warn","media":{"id":1}`}, []int{0, 5}, ""},
		{"missing field", []string{"absent:x"},
			[]string{`"present":"x"`, `"absent":{"x":"x"}`, `"absent":"x"`}, []int{2}, ""},
		{"user_ip", []string{"user_ip:192.0.2.7"},
			[]string{`"user_ip":"192.0.2.7"`, `"a":1`}, []int{1}, "192.0.2.7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := "where" + strings.NewReplacer(" ", "-", ",", "").Replace(c.name)
			topic = strings.Map(func(r rune) rune {
				if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
					return r
				}
				return -1
			}, topic)
			s := ts.open(t, whereQuery(c.terms...)+"&topic="+topic)
			s.greeting(t)
			for i, ev := range c.events {
				body := fmt.Sprintf(`{%s,"n":%d}`, ev, i)
				r := ts.postToWith(t, "topic="+topic, body, map[bool]string{true: c.xff}[i == len(c.events)-1])
				if r.status != http.StatusOK {
					t.Fatalf("POST %s: %d %s", body, r.status, r.body)
				}
			}
			var got []int
			for len(got) < len(c.want) {
				got = append(got, eventN(t, s.nextEvent(t)))
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("where %q: got events %v, want %v", c.terms, got, c.want)
			}
		})
	}
}

// postToWith is postTo of a JSON body with an X-Forwarded-For header (none
// if xff is "").
func (ts *testServer) postToWith(tb testing.TB, query, body, xff string) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+"/api/events?"+query, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return ts.do(tb, req)
}

// TestFilterRefusals: a malformed filter, or one over the limits, is a 400
// whose message names the parameter; the listener gets no stream.
func TestFilterRefusals(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	many := make([]string, filter.DefaultLimits.Terms+1)
	for i := range many {
		many[i] = fmt.Sprintf("k%d:v", i)
	}
	for _, c := range []struct {
		query, want string
	}{
		{whereQuery("type"), `where "type"`},
		{whereQuery(":x"), `where ":x"`},
		{whereQuery("a..b:x"), `where "a..b:x"`},
		{whereQuery("a.:x"), `where "a.:x"`},
		{whereQuery(many...), `too many "where" parameters`},
		{whereQuery(strings.Repeat("p", filter.DefaultLimits.PathLen+1) + ":x"), `where "ppp`},
		{whereQuery(strings.Repeat("a.", filter.DefaultLimits.Segments) + "a:x"), `where "a.a.`},
		{whereQuery("k:" + strings.Repeat("v", filter.DefaultLimits.ValueLen+1)), `where "k:vvv`},
		{"sample=0", `sample "0"`},
		{"sample=1.5", `sample "1.5"`},
		{"sample=-0.5", `sample "-0.5"`},
		{"sample=abc", `sample "abc"`},
		{"sample=NaN", `sample "NaN"`},
		{"sample=", `sample ""`},
		{"sample=0.5&sample=0.5", `one "sample" parameter`},
	} {
		before := ts.Stats().TurnedAway[server.TurnAwayInvalid]
		r := ts.get(t, "/events?"+c.query)
		var e struct{ Error string }
		_ = json.Unmarshal([]byte(r.body), &e)
		if r.status != http.StatusBadRequest || !strings.Contains(e.Error, c.want) {
			t.Errorf("GET /events?%.60s: %d %.200s; want 400 naming %s", c.query, r.status, r.body, c.want)
		}
		if n := ts.Stats().TurnedAway[server.TurnAwayInvalid] - before; n != 1 {
			t.Errorf("GET /events?%.60s: %d listeners turned away as invalid, want 1", c.query, n)
		}
	}
	// At the limits: accepted.
	at := make([]string, filter.DefaultLimits.Terms)
	for i := range at {
		at[i] = fmt.Sprintf("k%d:v", i)
	}
	at[0] = strings.Repeat("a.", filter.DefaultLimits.Segments-1) + "a:" + strings.Repeat("v", filter.DefaultLimits.ValueLen)
	s := ts.open(t, whereQuery(at...)+"&sample=1e-9")
	s.greeting(t)
}

// get sends a GET to path and reads its whole answer.
func (ts *testServer) get(tb testing.TB, path string) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.url+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ts.do(tb, req)
}

// TestFilterGreeting: a filtered listener is told its filter, as the service
// understood it, in a comment after the greeting.
func TestFilterGreeting(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	s := ts.open(t, whereQuery("type:warn", "type:error", "media.id:a b")+"&sample=0.25")
	b := s.next(t)
	want := []string{"connected", `filter media.id:"a b" type:error|warn sample=0.25`}
	if !slices.Equal(b.comments, want) || b.retry < 0 {
		t.Fatalf("greeting: %q, want the comments %q and a retry hint", b.raw, want)
	}
}

// TestFilterSample: listeners with the same sample receive the same events,
// a smaller sample a subset of a larger one's, about the proportion asked,
// chosen from the event's id; a listener that resumes with its last id goes
// on with the same subset.
func TestFilterSample(t *testing.T) {
	t.Parallel()
	const events = 400
	ts := startBuffered(t, 1024, nil)
	all := ts.open(t, "")
	half1 := ts.open(t, "sample=0.5")
	half2 := ts.open(t, "sample=0.5")
	quarter := ts.open(t, "sample=0.25")
	resumed := ts.open(t, "sample=0.5")
	for _, s := range []*sseStream{all, half1, half2, quarter, resumed} {
		s.greeting(t)
	}
	for n := range events {
		ts.mustPostTo(t, "", fmt.Sprintf(`{"n":%d}`, n))
	}
	// Which events each fraction keeps, from the ids the full stream saw.
	ids := map[int]uint64{}
	for range events {
		b := all.nextEvent(t)
		_, ids[eventN(t, b)] = splitID(t, b.id)
	}
	kept := func(f float64, from int) []int {
		var ns []int
		for n := from; n < events; n++ {
			if filter.Sampled(ids[n], f) {
				ns = append(ns, n)
			}
		}
		return ns
	}
	read := func(s *sseStream, k int) (ns []int, last string) {
		for range k {
			b := s.nextEvent(t)
			ns, last = append(ns, eventN(t, b)), b.id
		}
		return ns, last
	}
	want := kept(0.5, 0)
	if len(want) < events/2-60 || len(want) > events/2+60 {
		t.Fatalf("sample 0.5 keeps %d events of %d", len(want), events)
	}
	for _, s := range []*sseStream{half1, half2} {
		if got, _ := read(s, len(want)); !slices.Equal(got, want) {
			t.Fatalf("sample 0.5: got %v, want %v", got, want)
		}
	}
	wantQ := kept(0.25, 0)
	if got, _ := read(quarter, len(wantQ)); !slices.Equal(got, wantQ) {
		t.Fatalf("sample 0.25: got %v, want %v", got, wantQ)
	}
	for _, n := range wantQ {
		if !slices.Contains(want, n) {
			t.Fatalf("event %d kept at 0.25, not at 0.5", n)
		}
	}
	// Resume half-way through: the rest of the same subset, no gap.
	first, last := read(resumed, len(want)/2)
	resumed.close()
	again := ts.open(t, "sample=0.5", "Last-Event-ID", last)
	again.greeting(t)
	rest, _ := read(again, len(want)-len(first))
	if got := slices.Concat(first, rest); !slices.Equal(got, want) {
		t.Fatalf("resumed: got %v, want %v", got, want)
	}
}

// TestFilterResume: a filtered listener that resumes after its last id gets
// the matching events after it, exactly (no gap, none it had, none that do
// not match), then live ones.
func TestFilterResume(t *testing.T) {
	t.Parallel()
	ts := startBuffered(t, 256, nil)
	s := ts.open(t, whereQuery("kind:a"))
	s.greeting(t)
	for n := range 10 {
		ts.mustPostTo(t, "", fmt.Sprintf(`{"kind":%q,"n":%d}`, []string{"a", "b"}[n%2], n))
	}
	var last string
	for _, want := range []int{0, 2, 4} {
		b := s.nextEvent(t)
		if n := eventN(t, b); n != want {
			t.Fatalf("got event %d, want %d", n, want)
		}
		last = b.id
	}
	s.close()
	for n := 10; n < 14; n++ {
		ts.mustPostTo(t, "", fmt.Sprintf(`{"kind":%q,"n":%d}`, []string{"a", "b"}[n%2], n))
	}
	again := ts.open(t, whereQuery("kind:a"), "Last-Event-ID", last)
	again.greeting(t)
	ts.mustPostTo(t, "", `{"kind":"a","n":14}`)
	for _, want := range []int{6, 8, 10, 12, 14} {
		b := again.nextEvent(t)
		if b.isGap() || eventN(t, b) != want {
			t.Fatalf("resumed: got %q, want event %d", b.raw, want)
		}
	}
}

// TestFilteredListenerFallsBehind: a filtered listener that falls more than
// the buffer behind is told, in gap events, exactly how many of the events
// for it it missed, never the events its filter turns away.
func TestFilteredListenerFallsBehind(t *testing.T) {
	t.Parallel()
	const events = 400 // that match; as many that do not; 25 MiB in all
	ts := startBuffered(t, 16, func(c *server.Config) {
		c.WriteTimeout = time.Minute
		c.Heartbeat = time.Hour
	})
	conn, br := rawStreamQuery(t, ts, whereQuery("kind:mine"), 4096)
	eventually(t, "listener registered", func() bool { return ts.Listeners() == 1 })
	pad := strings.Repeat("x", 32<<10)
	for n := range events {
		ts.mustPostTo(t, "", fmt.Sprintf(`{"kind":"mine","n":%d,"pad":%q}`, n, pad))
		ts.mustPostTo(t, "", fmt.Sprintf(`{"kind":"other","other":%d,"pad":%q}`, n, pad))
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	r := sseclient.NewReader(httputil.NewChunkedReader(br))
	readAccountedFor(t, r, events)
}

// TestFilterStats: listeners with the same filter and topics share one
// filter; Stats counts the distinct filters alive and the events filters
// turned away (one per event and listener).
func TestFilterStats(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	a1 := ts.open(t, whereQuery("k:a"))
	a2 := ts.open(t, whereQuery("k:a"))
	b := ts.open(t, whereQuery("j:b"))
	plain := ts.open(t, "")
	for _, s := range []*sseStream{a1, a2, b, plain} {
		s.greeting(t)
	}
	if n := ts.Stats().Filters; n != 2 {
		t.Fatalf("Filters = %d with two distinct filters, want 2", n)
	}
	before := ts.Stats().FilteredOut
	for _, e := range []string{`{"k":"a"}`, `{"j":"b"}`, `{"k":"c"}`, `{"k":"a"}`, `{"j":"b"}`} {
		ts.mustPostTo(t, "", e)
	}
	// Last, an event every filter matches: once a listener has it, it has
	// looked at every event before it.
	ts.mustPostTo(t, "", `{"k":"a","j":"b"}`)
	for _, s := range []*sseStream{a1, a2, b} {
		for range 3 {
			s.nextEvent(t)
		}
	}
	// a1 and a2 turned away b, c and b; b turned away a, c and a.
	eventually(t, "filtered-out count", func() bool { return ts.Stats().FilteredOut-before == 3+3+3 })
	a1.close()
	a2.close()
	b.close()
	eventually(t, "filters gone with their listeners", func() bool { return ts.Stats().Filters == 0 })
}

// TestTopicField: with Config.TopicField, an event posted without a topic
// parameter goes to the topic its field names when that is a valid topic
// name, to the default topic otherwise; a topic parameter still wins. In a
// batch, each event goes to its own topic, in order.
func TestTopicField(t *testing.T) {
	t.Parallel()
	ts := start(t, func(c *server.Config) { c.TopicField = "kind" })
	player := ts.open(t, "topic=player")
	ads := ts.open(t, "topic=ads")
	def := ts.open(t, "topic=default")
	for _, s := range []*sseStream{player, ads, def} {
		s.greeting(t)
	}
	ts.mustPostTo(t, "", `{"kind":"player","n":0}`)
	ts.mustPostTo(t, "", `{"kind":"not a topic!","n":1}`)
	ts.mustPostTo(t, "", `{"kind":42,"n":2}`)
	ts.mustPostTo(t, "", `{"n":3}`)
	ts.mustPostTo(t, "", `{"kind":{"x":"player"},"n":4}`)
	ts.mustPostTo(t, "", `{"media":{"kind":"player"},"n":5}`)
	ts.mustPostTo(t, "", `{"kind":"pl\u0061yer","n":6}`)
	ts.mustPostTo(t, "topic=ads", `{"kind":"player","n":7}`)
	if r := ts.postTo(t, "", "application/x-ndjson",
		`{"kind":"ads","n":8}`+"\n"+`{"kind":"ads","n":9}`+"\n"+`{"kind":"player","n":10}`+"\n"+`{"n":11}`+"\n"+`{"kind":"ads","n":12}`+"\n"); r.status != http.StatusOK || r.body != `{"accepted":5}` {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		s     *sseStream
		topic string
		want  []int
	}{
		{player, "player", []int{0, 6, 10}},
		{ads, "ads", []int{7, 8, 9, 12}},
		{def, "", []int{1, 2, 3, 4, 5, 11}},
	} {
		for _, want := range c.want {
			b := c.s.nextEvent(t)
			if n := eventN(t, b); n != want || b.topic != c.topic {
				t.Fatalf("topic %q: got event %d on topic %q, want %d", c.topic, n, b.topic, want)
			}
		}
	}
}

// TestFilterCombinesWithTopics: a listener's filter applies to its topics
// (and patterns) only: it receives the matching events of its topics, none of
// other topics, and listeners with the same filter on other topics are
// distinct filters.
func TestFilterCombinesWithTopics(t *testing.T) {
	t.Parallel()
	ts := start(t, nil)
	s := ts.open(t, whereQuery("type:error")+"&topic=player.*&topic=ads")
	other := ts.open(t, whereQuery("type:error")+"&topic=video")
	s.greeting(t)
	other.greeting(t)
	if n := ts.Stats().Filters; n != 2 {
		t.Fatalf("Filters = %d, want 2", n)
	}
	for i, q := range []string{"topic=player.a", "topic=video", "topic=ads", "topic=player.b", "topic=player.a", ""} {
		typ := "error"
		if i == 3 {
			typ = "info"
		}
		ts.mustPostTo(t, q, fmt.Sprintf(`{"type":%q,"n":%d}`, typ, i))
	}
	for _, want := range []int{0, 2, 4} {
		if n := eventN(t, s.nextEvent(t)); n != want {
			t.Fatalf("got event %d, want %d", n, want)
		}
	}
	if n := eventN(t, other.nextEvent(t)); n != 1 {
		t.Fatalf("the listener to video got event %d, want 1", n)
	}
}

package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/bench/baseline"
)

func TestFilterQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		idx, filters, buckets int
		want                  string
	}{
		{0, 0, 10, ""},
		{0, 10, 10, "?where=bucket:0"},
		{13, 10, 10, "?where=bucket:3"},
		{3, 4, 0, "?where=bucket:3"}, // default buckets: 10
		{7, 5, 2, "?where=bucket:0&where=bucket:x2"},
		{17, 1000, 10, "?where=bucket:7&where=bucket:x17"},
		{1017, 1000, 10, "?where=bucket:7&where=bucket:x17"}, // round-robin
		{999, 1000, 10, "?where=bucket:9&where=bucket:x999"},
		{5, 1000, 100, "?where=bucket:05&where=bucket:x5"},
		{250, 1000, 1000, "?where=bucket:250"},
	} {
		t.Run(fmt.Sprintf("i=%d,f=%d,b=%d", tc.idx, tc.filters, tc.buckets), func(t *testing.T) {
			if got := FilterQuery(tc.idx, tc.filters, tc.buckets); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFiltersAreDistinct checks the construction the filter scenario relies
// on: N distinct queries, each passing exactly one bucket.
func TestFiltersAreDistinct(t *testing.T) {
	t.Parallel()
	for _, n := range []int{10, 1000} {
		queries := map[string]bool{}
		perBucket := make([]int, 10)
		for i := range 1000 {
			f := newListenerFilter(i, n, 10)
			queries[f.query] = true
			if i < n {
				perBucket[f.bucket]++
			}
		}
		if len(queries) != n {
			t.Errorf("%d filters: %d distinct queries", n, len(queries))
		}
		for b, c := range perBucket {
			if c != n/10 {
				t.Errorf("%d filters: %d pass bucket %d, want %d", n, c, b, n/10)
			}
		}
	}
}

func TestBodyBuckets(t *testing.T) { // not parallel: AllocsPerRun
	for _, tc := range []struct {
		buckets int
		seq     uint64
		want    string
	}{
		{10, 0, "0"}, {10, 7, "7"}, {10, 1234, "4"}, {1, 5, "0"}, {100, 7, "07"}, {100, 1234, "34"}, {1000, 1234, "234"},
	} {
		b := newWrappedBody("", "", "abcd1234", 2, 128, tc.buckets)
		before := len(b.Bytes())
		b.Set(tc.seq, 1_764_000_000_000_000_000)
		if len(b.Bytes()) != before || before != 128 {
			t.Fatalf("buckets %d: %d bytes, then %d; want 128", tc.buckets, before, len(b.Bytes()))
		}
		var m map[string]any
		if err := json.Unmarshal(b.Bytes(), &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", b.Bytes(), err)
		}
		if m[BucketField] != tc.want {
			t.Errorf("buckets %d seq %d: bucket %v, want %q", tc.buckets, tc.seq, m[BucketField], tc.want)
		}
		if f, ok := parseEvent(b.Bytes()); !ok || f.seq != int64(tc.seq) {
			t.Errorf("parse: %+v %v", f, ok)
		}
	}
	if b := NewBody("abcd1234", 2, 128); strings.Contains(string(b.Bytes()), BucketField) {
		t.Errorf("a body without buckets has one: %s", b.Bytes())
	}
	b := newWrappedBody("", "", "abcd1234", 2, 128, 10)
	var seq uint64
	if n := testing.AllocsPerRun(100, func() { seq++; b.Set(seq, 1) }); n != 0 {
		t.Errorf("Set with buckets allocates %v times", n)
	}
}

func TestListenerFilterAccepts(t *testing.T) {
	t.Parallel()
	f := newListenerFilter(3, 10, 10) // bucket 3
	b := newWrappedBody("", "", "abcd1234", 0, 128, 10)
	b.Set(13, 1)
	own := string(b.Bytes())
	for event, want := range map[string]bool{
		own: true,
		own[:len(own)-1] + `,"user_ip":"127.0.0.1"}`: true,
		`{"pad":"x","bucket":"3","run":"r"}`:         true,
		`{"bucket": "3"}`:                            true,
		`{"bucket":"4"}`:                             false,
		`{"bucket":"33"}`:                            false,
		`{"bucket":3}`:                               false, // the bench's events carry strings
		`{"run":"r","seq":3}`:                        false,
		``:                                           false,
	} {
		if got := f.accepts([]byte(event)); got != want {
			t.Errorf("%s: accepts %v, want %v", event, got, want)
		}
	}
}

// TestFrameScannerOnEvent checks that every data event, and nothing else,
// reaches OnEvent, whole or split anywhere, sampled or not.
func TestFrameScannerOnEvent(t *testing.T) {
	t.Parallel()
	want := []string{`{"a":1}`, `{"a":2}`, `{"a":3}`, `{"a":4}`, ``, `{"a":5}`, `{"a":6}`}
	for i := 0; i <= len(mixedStream); i++ {
		sc := &FrameScanner{SampleEvery: 3}
		var got []string
		sc.OnEvent = func(p []byte) { got = append(got, string(p)) }
		sc.Feed([]byte(mixedStream[:i]))
		sc.Feed([]byte(mixedStream[i:]))
		if !slices.Equal(got, want) || sc.Data != 7 {
			t.Fatalf("split at %d: events %q (data %d), want %q", i, got, sc.Data, want)
		}
	}
}

// filteringServer stands in for the service's filters: GET
// /events?where=bucket:<v>&… streams the events whose bucket is one of the
// values (every event without a where), POST /api/events broadcasts.
type filteringServer struct {
	mu   sync.Mutex
	subs map[chan []byte][]string // the values each listener accepts
	// route, when set, is the bucket an event goes to, in place of its
	// own: a server that gets its filters wrong.
	route func(pid, seq int64, bucket string) string
}

func startFilteringServer(t *testing.T) string {
	t.Helper()
	return startMisroutingServer(t, nil)
}

// startMisroutingServer starts a filteringServer whose route is route.
func startMisroutingServer(t *testing.T, route func(pid, seq int64, bucket string) string) string {
	t.Helper()
	s := &filteringServer{subs: map[chan []byte][]string{}, route: route}
	ts := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(ts.Close)
	return ts.URL
}

func (s *filteringServer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/events":
		terms := r.URL.Query()["where"]
		values := make([]string, 0, len(terms))
		for _, term := range terms {
			values = append(values, strings.TrimPrefix(term, BucketField+":"))
		}
		ch := make(chan []byte, 4096)
		s.mu.Lock()
		s.subs[ch] = values
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.subs, ch)
			s.mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": connected\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case ev := <-ch:
				fmt.Fprintf(w, "data: %s\n\n", ev)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	case "/api/events":
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Bucket   string
			Pid, Seq int64
		}
		_ = json.Unmarshal(body, &ev)
		if s.route != nil {
			ev.Bucket = s.route(ev.Pid, ev.Seq, ev.Bucket)
		}
		s.mu.Lock()
		for ch, values := range s.subs {
			if len(values) == 0 || slices.Contains(values, ev.Bucket) {
				ch <- body
			}
		}
		s.mu.Unlock()
	default:
		http.NotFound(w, r)
	}
}

// TestRunWithFilters: against a server that filters, each listener gets
// exactly the events of its bucket, in order, and nothing else.
func TestRunWithFilters(t *testing.T) {
	for _, filters := range []int{3, 6} { // 6 > 3 buckets: with the distinct term
		t.Run(fmt.Sprintf("filters=%d", filters), func(t *testing.T) {
			cfg := testConfig(startFilteringServer(t))
			cfg.ServerPID = 0
			cfg.Listeners, cfg.Filters, cfg.Buckets = 6, filters, 3
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			l := rep.Load
			if l.Sent != 300 || l.Expected != 600 || l.Delivered != 600 || l.Lost != 0 || l.Extra != 0 || l.DeliveryRatio != 1 || !l.Complete {
				t.Fatalf("sent %d, delivered %d of %d (lost %d, extra %d, ratio %v)", l.Sent, l.Delivered, l.Expected, l.Lost, l.Extra, l.DeliveryRatio)
			}
			// The producers share the 300 events: one may post 151, the
			// other 149, so that a bucket holds 99 to 101.
			if l.PerListenerMin < 99 || l.PerListenerMax > 101 {
				t.Errorf("per listener %d..%d, want about 100 each", l.PerListenerMin, l.PerListenerMax)
			}
			if f := l.Filter; f == nil || f.Filters != filters || f.Checked != 600 || f.Rejected != 0 {
				t.Errorf("filter check %+v", f)
			}
			if o := l.Order; o.Checked != 600 || o.OutOfOrder != 0 || o.SeqGaps != 0 || o.Duplicates != 0 {
				t.Errorf("order check %+v", o)
			}
			p := rep.Params
			if p.Filters != filters || p.Buckets != 3 || p.FilterExample != FilterQuery(0, filters, 3) {
				t.Errorf("params %+v", p)
			}
			if w := runWarnings(rep); len(w) != 0 {
				t.Errorf("warnings %q", w)
			}
		})
	}
}

// TestRunWithFiltersCatchesAServerThatDoesNotFilter: the baseline ignores
// the where parameters; every listener gets every event, which the tool
// must report. The events its filter rejects are counted apart: the
// listener's deliveries, and its order check, are those of its bucket.
func TestRunWithFiltersCatchesAServerThatDoesNotFilter(t *testing.T) {
	_, url := startBaseline(t, baseline.Options{Buffer: 1024})
	cfg := testConfig(url)
	cfg.Listeners, cfg.Filters = 4, 2 // 10 buckets: each listener wants about 30
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Load
	// The run ends once every listener has its bucket's events: the
	// events posted after a listener's last one may not have reached it.
	if f := l.Filter; f == nil || f.Rejected == 0 || f.Checked > 4*300 || f.Checked-f.Rejected != l.Delivered || f.Example == "" {
		t.Fatalf("filter check %+v (delivered %d)", f, l.Delivered)
	}
	if l.Expected < 4*29 || l.Expected > 4*31 || l.Delivered != l.Expected || l.Lost != 0 || l.Extra != 0 || l.DeliveryRatio != 1 || !l.Complete {
		t.Errorf("delivered %d of %d (lost %d, extra %d, ratio %v, complete %v)", l.Delivered, l.Expected, l.Lost, l.Extra, l.DeliveryRatio, l.Complete)
	}
	if o := l.Order; o.Checked != l.Delivered || o.OutOfOrder != 0 || o.SeqGaps != 0 || o.Duplicates != 0 {
		t.Errorf("order check %+v: the rejected frames must be left out of it", o)
	}
	want := fmt.Sprintf("%d events reached listeners whose filter rejects them", l.Filter.Rejected)
	if w := runWarnings(rep); len(w) == 0 || !strings.HasPrefix(w[0], want) {
		t.Errorf("warnings %q", w)
	}
}

// TestRunWithFiltersCatchesAMisroutingServer: a server that loses an
// event of one bucket, and sends another bucket's listeners an event of
// bucket 1 in place of their own, is caught on both counts: an event their
// filter rejects does not make up for the one they lost.
func TestRunWithFiltersCatchesAMisroutingServer(t *testing.T) {
	url := startMisroutingServer(t, func(pid, seq int64, bucket string) string {
		switch {
		case pid == 0 && seq == 9: // bucket 0: lost
			return "none"
		case pid == 0 && seq == 10: // bucket 1: to the listeners of bucket 0
			return "0"
		}
		return bucket
	})
	cfg := testConfig(url)
	cfg.ServerPID = 0
	cfg.Listeners, cfg.Filters, cfg.Buckets = 6, 3, 3 // 2 listeners per bucket
	cfg.DrainQuiet = 300 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := rep.Load
	// Bucket 0's listeners lost seq 9 and got seq 10; bucket 1's lost seq 10.
	if f := l.Filter; f == nil || f.Rejected != 2 || f.Checked != 600-4+2 || !strings.Contains(f.Example, `"bucket":"1"`) {
		t.Errorf("filter check %+v", f)
	}
	if l.Expected != 600 || l.Delivered != 596 || l.Lost != 4 || l.Extra != 0 || l.Complete {
		t.Errorf("delivered %d of %d (lost %d, extra %d, complete %v)", l.Delivered, l.Expected, l.Lost, l.Extra, l.Complete)
	}
	if o := l.Order; o.Checked != 596 || o.SeqGaps != 4 || o.OutOfOrder != 0 || o.Duplicates != 0 {
		t.Errorf("order check %+v", o)
	}
	if w := runWarnings(rep); len(w) == 0 || !strings.HasPrefix(w[0], "2 events reached listeners whose filter rejects them") {
		t.Errorf("warnings %q", w)
	}
}

func TestFilterConfigErrors(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*Config){
		"negative filters":    func(c *Config) { c.Filters = -1 },
		"negative buckets":    func(c *Config) { c.Buckets = -1 },
		"centrifugo filtered": func(c *Config) { c.Filters = 10; c.Centrifugo = &Centrifugo{Channel: "c", APIKey: "k", Token: "t"} },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if err := cfg.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg := DefaultConfig()
	cfg.Filters = 10
	if err := cfg.validate(); err != nil || cfg.Buckets != DefaultBuckets {
		t.Errorf("filters without buckets: %v, buckets %d", err, cfg.Buckets)
	}
}

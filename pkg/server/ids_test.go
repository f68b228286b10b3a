package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// TestEventIDs: every event frame carries an id before its data; ids are
// 1 to 40 characters from [0-9A-Za-z_-], share the run's prefix, and their
// numbers increase by one per event in a run, across topics and named
// events.
func TestEventIDs(t *testing.T) {
	t.Parallel()
	for _, streamer := range streamers {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) {
				c.Heartbeat = time.Hour
				c.Streamer = streamer
			})
			s := ts.open(t, "")
			s.greeting(t)
			const events = 30
			for n := range events {
				query := []string{"", "topic=a", "topic=b&event=named", "event=other"}[n%4]
				ts.mustPostTo(t, query, fmt.Sprintf(`{"n":%d}`, n))
			}
			var prefix string
			var last uint64
			for n := range events {
				b := s.nextEvent(t)
				if !strings.HasPrefix(b.raw, "id: ") {
					t.Fatalf("event %d does not start with its id: %q", n, b.raw)
				}
				p, num := splitID(t, b.id)
				if n == 0 {
					prefix = p
				} else if p != prefix {
					t.Fatalf("event %d: id prefix %q, want the run's %q", n, p, prefix)
				}
				if n > 0 && num != last+1 {
					t.Fatalf("event %d: id number %d after %d, want %d", n, num, last, last+1)
				}
				last = num
				if got := eventN(t, b); got != n {
					t.Fatalf("event %d: got body n=%d", n, got)
				}
			}
		})
	}
}

// TestIDsIncreaseUnderConcurrentProducers: with several producers at once,
// a listener still sees strictly increasing id numbers, every number once.
func TestIDsIncreaseUnderConcurrentProducers(t *testing.T) {
	t.Parallel()
	const producers, perProducer = 4, 100
	ts := start(t, func(c *server.Config) { c.Heartbeat = time.Hour })
	s := ts.open(t, "")
	s.greeting(t)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for range perProducer {
				if r := ts.postTo(t, fmt.Sprintf("topic=t%d", p%2), "application/json", `{"n":1}`); r.status != http.StatusOK {
					t.Errorf("POST: %d %s", r.status, r.body)
					return
				}
			}
		})
	}
	wg.Wait()
	var last uint64
	for i := range producers * perProducer {
		b := s.nextEvent(t)
		_, num := splitID(t, b.id)
		if num != last+1 {
			t.Fatalf("event %d: id number %d after %d", i, num, last)
		}
		last = num
	}
}

// TestOneFramePerEvent: every listener receives the very same bytes for an
// event (the frame is built once), whatever its topics and however its
// stream is written. The retry hints of the greetings differ (jitter), so
// the comparison starts after them.
func TestOneFramePerEvent(t *testing.T) {
	t.Parallel()
	for _, streamer := range streamers {
		t.Run(string(streamer), func(t *testing.T) {
			t.Parallel()
			ts := start(t, func(c *server.Config) {
				c.Heartbeat = time.Hour
				c.Streamer = streamer
			})
			all1, all2 := ts.open(t, ""), ts.open(t, "")
			onA, onAB := ts.open(t, "topic=a"), ts.open(t, "topic=a&topic=b")
			// An HTTP/1.0 listener is written unchunked, on the hijacked
			// connection, whatever the streamer.
			conn, br := rawStream10(t, ts)
			defer conn.Close()
			for _, s := range []*sseStream{all1, all2, onA, onAB} {
				s.greeting(t)
			}
			eventually(t, "listeners registered", func() bool { return ts.Listeners() == 5 })
			const events = 40
			for n := range events {
				query := []string{"topic=a", "topic=b&event=named", "", "topic=c"}[n%4]
				ts.mustPostTo(t, query, fmt.Sprintf(`{"n":%d,"s":"x\u00e9\ny"}`, n))
			}
			read := func(s *sseStream, want int) map[string]string {
				got := make(map[string]string, want)
				for range want {
					b := s.nextEvent(t)
					got[b.id] = b.raw
				}
				return got
			}
			ref := read(all1, events)
			for name, got := range map[string]map[string]string{
				"second listener to every topic": read(all2, events),
				"listener on a":                  read(onA, events/4),
				"listener on a and b":            read(onAB, events/2),
				"HTTP/1.0 listener":              readRaw10(t, br, events),
			} {
				for id, raw := range got {
					if raw != ref[id] {
						t.Errorf("%s: event %s is %q, the first listener got %q", name, id, raw, ref[id])
					}
				}
			}
		})
	}
}

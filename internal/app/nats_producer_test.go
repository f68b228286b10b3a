package app_test

// Producers: POSTs from several connections at once, and checks that
// listeners received what was accepted.

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// producer POSTs numbered events from one connection, one at a time (each
// after the previous one was answered), and records what was accepted.
type producer struct {
	in       *instance
	name     string
	path     string        // the POST's path and query; "" for /api/events
	pace     time.Duration // the least time between two POSTs; 0: none
	accepted []string      // answered 200, in order; read it once run returned
	err      error         // an answer that is neither 200 nor a proper 503
	count    atomic.Int64  // len(accepted), for progress while run runs
	refused  atomic.Int64  // answered 503, or cut by a shutdown
}

// run posts events n = 0, 1, ... until count were posted or stop is closed
// (count < 0: until stop). A 503 must carry Retry-After and a JSON error; it
// is retried after a short pause with the next number.
func (p *producer) run(count int, stop <-chan struct{}) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	in := *p.in
	in.client = &http.Client{Transport: tr, Timeout: wait}
	path := p.path
	if path == "" {
		path = "/api/events"
	}
	next := time.Now()
	for i := 0; count < 0 || i < count; i++ {
		if p.pace > 0 {
			time.Sleep(time.Until(next))
			next = next.Add(p.pace)
		}
		select {
		case <-stop:
			return
		default:
		}
		body := event(p.name, i)
		a, err := in.do(http.MethodPost, path, body, nil)
		switch {
		case err != nil:
			// The connection was closed under a request in flight
			// (an instance shutting down): not accepted.
			p.refused.Add(1)
			time.Sleep(10 * time.Millisecond)
		case a.status == http.StatusOK:
			p.accepted = append(p.accepted, body)
			p.count.Add(1)
		case a.status == http.StatusServiceUnavailable:
			if err := checkUnavailable(a); err != nil {
				p.err = err
				return
			}
			p.refused.Add(1)
			time.Sleep(10 * time.Millisecond)
		default:
			p.err = fmt.Errorf("POST %s to %s: %d %s", body, in.name, a.status, a.body)
			return
		}
	}
}

// checkUnavailable checks a 503 answer to a POST: Retry-After and a JSON
// error body.
func checkUnavailable(a answer) error {
	var e struct {
		Error string `json:"error"`
	}
	if a.header.Get("Retry-After") == "" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") ||
		json.Unmarshal([]byte(a.body), &e) != nil || e.Error == "" {
		return fmt.Errorf("503 answer without Retry-After or JSON error: %v %s", a.header, a.body)
	}
	return nil
}

// produce runs perInstance producers on each instance at once, each posting
// count events, and returns them; every POST must be accepted.
func produce(t *testing.T, instances []*instance, perInstance, count int) []*producer {
	t.Helper()
	ps := startProducers(instances, perInstance, count)
	ps.wait(t)
	for _, p := range ps.all {
		if len(p.accepted) != count {
			t.Fatalf("producer %s: %d of %d events accepted", p.name, len(p.accepted), count)
		}
	}
	return ps.all
}

// producers are producers running at once.
type producers struct {
	all  []*producer
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// startProducers starts perInstance producers on each instance, posting
// count events each (count < 0: until halted).
func startProducers(instances []*instance, perInstance, count int) *producers {
	ps := &producers{stop: make(chan struct{})}
	for _, in := range instances {
		for j := range perInstance {
			p := &producer{in: in, name: fmt.Sprintf("%s.%d", in.name, j)}
			ps.all = append(ps.all, p)
			ps.wg.Go(func() { p.run(count, ps.stop) })
		}
	}
	return ps
}

// halt stops the producers and waits for them.
func (ps *producers) halt(t testing.TB) {
	t.Helper()
	ps.once.Do(func() { close(ps.stop) })
	ps.wait(t)
}

// wait waits for the producers to finish and fails t if one met an answer
// it should not have.
func (ps *producers) wait(t testing.TB) {
	t.Helper()
	ps.wg.Wait()
	for _, p := range ps.all {
		if p.err != nil {
			t.Fatalf("producer %s: %v", p.name, p.err)
		}
	}
}

// accepted counts the events accepted so far by every producer.
func (ps *producers) accepted() int64 {
	var n int64
	for _, p := range ps.all {
		n += p.count.Load()
	}
	return n
}

// refused counts the POSTs refused so far.
func (ps *producers) refused() int64 {
	var n int64
	for _, p := range ps.all {
		n += p.refused.Load()
	}
	return n
}

// waitAccepted waits until n more events were accepted.
func (ps *producers) waitAccepted(t testing.TB, n int64) {
	t.Helper()
	target := ps.accepted() + n
	poll(t, func() error {
		if got := ps.accepted(); got < target {
			return fmt.Errorf("%d events accepted, want %d (%d refused)", got, target, ps.refused())
		}
		return nil
	})
}

// checkProducers fails t unless ms, a listener's events, hold every event
// the producers had accepted, each once, and those of one producer in the
// order it posted them. Other events (posted but refused, yet stored: a 503
// after a timeout) are allowed, once each.
func checkProducers(t testing.TB, who string, ms []sseclient.Message, ps []*producer) {
	t.Helper()
	pos := make(map[string]int, len(ms))
	for i, m := range ms {
		if m.Type != "message" {
			t.Fatalf("%s: event %d is a %s event %s\n got: %s", who, i, m.Type, m.Data, summary(ms))
		}
		if j, dup := pos[m.Data]; dup {
			t.Fatalf("%s: %s received twice (events %d and %d)", who, m.Data, j, i)
		}
		pos[m.Data] = i
	}
	for _, p := range ps {
		last := -1
		for _, body := range p.accepted {
			i, ok := pos[body]
			if !ok {
				t.Fatalf("%s: accepted event %s never received", who, body)
			}
			if i < last {
				t.Fatalf("%s: %s received before an earlier event of its producer", who, body)
			}
			last = i
		}
	}
}

// waitProducers waits until the listener received every accepted event of
// the producers, then checks it with checkProducers.
func (l *listener) waitProducers(t testing.TB, ps []*producer) []sseclient.Message {
	t.Helper()
	want := 0
	for _, p := range ps {
		want += len(p.accepted)
	}
	got := l.waitCount(t, want)
	poll(t, func() error { // a few refused events may also have been stored
		got = l.messages()
		seen := make(map[string]bool, len(got))
		for _, m := range got {
			seen[m.Data] = true
		}
		for _, p := range ps {
			for _, body := range p.accepted {
				if !seen[body] {
					return fmt.Errorf("listener on %s lacks %s", l.name, body)
				}
			}
		}
		return nil
	})
	checkProducers(t, "listener on "+l.name, got, ps)
	return got
}

// sameOrder fails t unless every listener received the same events with the
// same ids, in the same order.
func sameOrder(t testing.TB, ls []*listener, got [][]sseclient.Message) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if len(got[i]) != len(got[0]) {
			t.Fatalf("listener on %s got %d events, on %s %d", ls[i].name, len(got[i]), ls[0].name, len(got[0]))
		}
		for j := range got[0] {
			a, b := got[0][j], got[i][j]
			if a.ID != b.ID || a.Data != b.Data || a.Type != b.Type {
				t.Fatalf("event %d: %s on %s got %s %s, on %s %s %s", j, "listeners differ", ls[0].name, a.ID, a.Data, ls[i].name, b.ID, b.Data)
			}
		}
	}
}

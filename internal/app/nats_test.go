package app_test

// Scale-out through NATS JetStream, seen by users: instances run by app.Run
// share one embedded NATS server (each test its own), producers POST and
// listeners read GET /events as a browser would.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// startInstances starts n instances named a, b, c... on natsURL.
func startInstances(t *testing.T, n int, natsURL string, extra ...string) []*instance {
	t.Helper()
	out := make([]*instance, n)
	for i := range out {
		out[i] = startInstance(t, string(rune('a'+i)), natsURL, extra...)
	}
	return out
}

// listenAll opens one live listener on each instance.
func listenAll(t *testing.T, instances []*instance) []*listener {
	t.Helper()
	ls := make([]*listener, len(instances))
	for i, in := range instances {
		ls[i] = in.listen(t, "")
	}
	return ls
}

// TestNATSEveryListenerGetsEveryEventOnceInOneOrder: with two or three
// instances, producers posting concurrently on every instance, a listener on
// each instance receives every accepted event exactly once, those of a
// producer in its order, and all listeners receive them in the same order
// with the same ids: the stream's consecutive sequence numbers.
func TestNATSEveryListenerGetsEveryEventOnceInOneOrder(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("instances=%d", n), func(t *testing.T) {
			t.Parallel()
			ns := natstest.RunServer(t)
			instances := startInstances(t, n, ns.URL())
			ls := listenAll(t, instances)
			ps := produce(t, instances, 2, 25)
			got := make([][]sseclient.Message, len(ls))
			for i, l := range ls {
				got[i] = l.waitProducers(t, ps)
				if len(got[i]) != 2*25*n {
					t.Fatalf("listener on %s: %d events, want %d", l.name, len(got[i]), 2*25*n)
				}
				checkConsecutive(t, "listener on "+l.name, got[i], 1)
			}
			sameOrder(t, ls, got)
		})
	}
}

// TestNATSResumeOnAnotherInstance: a listener that saw events on one instance
// resumes on another with the last id it saw, and receives exactly the events
// after it, then the live ones.
func TestNATSResumeOnAnotherInstance(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	in := startInstances(t, 2, ns.URL())
	first := in[0].listen(t, "")
	watcher := in[1].listen(t, "") // b has consumed what it shows
	all := events("x", 0, 20)
	for _, e := range all[:15] {
		in[0].mustPost(t, e)
	}
	seen := first.waitData(t, all[:15])
	watcher.waitData(t, all[:15])
	first.close()

	resumed := in[1].listen(t, seen[9].ID) // the client saw events 0..9
	for _, e := range all[15:] {
		in[0].mustPost(t, e)
	}
	got := resumed.waitData(t, all[10:])
	checkConsecutive(t, "resumed listener", got, 11)
}

// TestNATSResumeOlderThanTheRing: an instance keeps 16 events; a listener
// resuming from an id older than that, but still in the stream, receives the
// missing events from the stream, then those of the ring, then the live
// ones, with no gap and no duplicate.
func TestNATSResumeOlderThanTheRing(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	a := startInstance(t, "a", ns.URL(), "-buffer", "16")
	live := a.listen(t, "")
	all := events("x", 0, 60)
	seen := postInSteps(t, a, live, all[:50])

	resumed := a.listen(t, seen[4].ID)
	resumed.waitData(t, all[5:50])
	for _, e := range all[50:] {
		a.mustPost(t, e)
	}
	got := resumed.waitData(t, all[5:])
	checkConsecutive(t, "resumed listener", got, 6)
}

// TestNATSResumeOlderThanTheStream: events removed from the stream (purged
// by an operator, as max age does) cannot be replayed: a listener resuming
// before them gets a gap event with how many it missed, then every event
// still in the stream, then the live ones. On the instance whose full ring
// holds some of them (a listener that far back would be lapped at once: it
// is served from the stream), and on one that joined after the purge.
func TestNATSResumeOlderThanTheStream(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	a := startInstance(t, "a", ns.URL(), "-buffer", "16")
	live := a.listen(t, "")
	all := events("x", 0, 45)
	seen := postInSteps(t, a, live, all[:40])

	// Keep the last 10 events: sequences 31..40. a's ring holds 25..40.
	js := natsClient(t, ns.URL())
	stream, err := js.Stream(testCtx(t), natsbridge.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(testCtx(t), jetstream.WithPurgeKeep(10)); err != nil {
		t.Fatal(err)
	}
	b := startInstance(t, "b", ns.URL())

	tests := []struct {
		in     *instance
		name   string
		missed int      // the gap's count
		rest   []string // what follows the gap, before the live events
	}{
		// The stream lost 6..30: they are missed, 31..40 come from the
		// stream.
		{a, "ring holds part", 25, all[30:40]},
		// b consumed nothing: 6..30 are missed, 31..40 come from the stream.
		{b, "joined after", 25, all[30:40]},
	}
	resumed := make([]*listener, len(tests))
	for i, tc := range tests {
		resumed[i] = tc.in.listen(t, seen[4].ID)
		got := resumed[i].waitCount(t, 1+len(tc.rest))
		if g := got[0]; g.Type != "gap" || g.Data != fmt.Sprintf(`{"missed":%d}`, tc.missed) {
			t.Fatalf("%s: first event %s %s, want a gap of %d\n got: %s", tc.name, g.Type, g.Data, tc.missed, summary(got))
		}
		checkData(t, tc.name, got[1:], tc.rest)
	}
	for _, e := range all[40:] {
		a.mustPost(t, e)
	}
	for i, tc := range tests {
		got := resumed[i].waitCount(t, 1+len(tc.rest)+5)
		checkData(t, tc.name, got[1:], append(append([]string(nil), tc.rest...), all[40:]...))
		checkConsecutive(t, tc.name, got[1:], uint64(41-len(tc.rest)))
	}
}

// postInSteps posts events to an instance a few at a time, each time waiting
// until the listener, which must have received nothing yet, got them: a
// listener of a small ring must not fall behind it (it would lose events,
// as it should). It returns the events received.
func postInSteps(t *testing.T, in *instance, l *listener, all []string) []sseclient.Message {
	t.Helper()
	const step = 4
	for i, e := range all {
		in.mustPost(t, e)
		if (i+1)%step == 0 {
			l.waitCount(t, i+1)
		}
	}
	return l.waitData(t, all)
}

// TestNATSLateInstanceReplaysFromTheStream: an instance started after events
// were published holds none of them; a listener resuming there with an early
// id receives them from the stream, then the live ones.
func TestNATSLateInstanceReplaysFromTheStream(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	a := startInstance(t, "a", ns.URL())
	live := a.listen(t, "")
	all := events("x", 0, 25)
	for _, e := range all[:20] {
		a.mustPost(t, e)
	}
	seen := live.waitData(t, all[:20])

	b := startInstance(t, "b", ns.URL())
	resumed := b.listen(t, seen[2].ID)
	resumed.waitData(t, all[3:20])
	for _, e := range all[20:] {
		a.mustPost(t, e)
	}
	got := resumed.waitData(t, all[3:])
	checkConsecutive(t, "resumed listener", got, 4)
	// A live listener on b, opened now, gets only the live events.
	fresh := b.listen(t, "")
	b.mustPost(t, event("y", 0))
	fresh.waitData(t, []string{event("y", 0)})
}

// TestNATSIdempotencyKey: a POST retried with the same Idempotency-Key, on
// the same instance or another, is broadcast once; so is each line of an
// NDJSON batch retried with its key. A single event's key never collides with
// a batch line's ("K:0" after a batch with key "K" is an event of its own). A
// key reused for another event, or another batch, is answered 409 Conflict
// and nothing of it is broadcast. events_accepted counts the events stored,
// and nats_duplicates_total the retries.
func TestNATSIdempotencyKey(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	in := startInstances(t, 2, ns.URL())
	ls := listenAll(t, in)
	key := func(k string) map[string]string { return map[string]string{"Idempotency-Key": k} }
	ndjson := func(k string) map[string]string {
		return map[string]string{"Idempotency-Key": k, "Content-Type": "application/x-ndjson"}
	}
	batch := strings.Join(events("batch", 0, 5), "\n") + "\n"
	other := strings.Join(events("other", 0, 7), "\n") + "\n"
	steps := []struct {
		in     *instance
		body   string
		header map[string]string
		status int
		want   string // the answer's body, or a part of it for an error
	}{
		{in[0], event("one", 0), key("k-one"), 200, ""},
		{in[0], event("one", 0), key("k-one"), 200, ""}, // retried on the same instance
		{in[1], event("one", 0), key("k-one"), 200, ""}, // and on another
		{in[1], batch, ndjson("K"), 200, `{"accepted":5}`},
		{in[0], batch, ndjson("K"), 200, `{"accepted":5}`}, // the whole batch retried
		{in[1], event("k0", 0), key("K:0"), 200, ""},       // not line 0 of batch K
		{in[1], event("two", 0), key("k-two"), 200, ""},
		{in[0], event("one", 0), key("k-three"), 200, ""},                           // same body, another key: a new event
		{in[0], event("one", 1), key("k-one"), 409, "Idempotency-Key already used"}, // another body, a used key
		{in[1], event("two", 0), key("k-two"), 200, ""},                             // a retry, still
		{in[1], other, ndjson("K"), 409, `"accepted":0`},                            // another batch, a used key
		{in[0], event("two", 0), key("k-two"), 200, ""},
	}
	for i, s := range steps {
		a := s.in.post(t, s.body, s.header)
		if a.status != s.status || (s.status == 200 && a.body != s.want) || (s.status != 200 && !strings.Contains(a.body, s.want)) {
			t.Fatalf("step %d: %d %q, want %d %q", i, a.status, a.body, s.status, s.want)
		}
		if s.status == http.StatusConflict && a.header.Get("Retry-After") != "" {
			t.Fatalf("step %d: a conflict is not to be retried, yet Retry-After is set", i)
		}
	}
	want := append(append([]string{event("one", 0)}, events("batch", 0, 5)...), event("k0", 0), event("two", 0), event("one", 0))
	got := make([][]sseclient.Message, len(ls))
	for i, l := range ls {
		got[i] = l.waitData(t, want)
		checkConsecutive(t, "listener on "+l.name, got[i], 1)
	}
	sameOrder(t, ls, got)
	// Nothing else arrives: a marker posted last is the next event.
	in[0].mustPost(t, event("end", 0))
	for _, l := range ls {
		l.waitData(t, append(want, event("end", 0)))
	}

	// 10 events stored (the marker included), and as many retries answered
	// 200 without being stored: 2 of the single event, 5 of the batch's
	// lines, 2 of k-two.
	var accepted, duplicates, conflicts float64
	for _, inst := range in {
		m := scrape(t, inst.client, inst.addr)
		a, _ := value(m, "dispatcher_events_accepted_total")
		d, _ := value(m, "dispatcher_nats_duplicates_total")
		c, _ := value(m, "dispatcher_events_rejected_total", "reason", "conflict")
		accepted, duplicates, conflicts = accepted+a, duplicates+d, conflicts+c
	}
	if accepted != 10 || duplicates != 9 || conflicts != 2 {
		t.Fatalf("events_accepted %v, nats_duplicates %v, conflicts %v over both instances; want 10, 9, 2", accepted, duplicates, conflicts)
	}
}

// TestNATSBatch: an NDJSON batch posted to one instance is acknowledged as a
// whole ({"accepted":N}) and every line reaches the listeners of every
// instance, in line order; batches posted at once on two instances are not
// interleaved.
func TestNATSBatch(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	in := startInstances(t, 2, ns.URL())
	ls := listenAll(t, in)
	const lines = 200
	bodies := [][]string{events("a", 0, lines), events("b", 0, lines)}
	errs := make(chan error, 2)
	for i, inst := range in {
		go func() {
			a, err := inst.do(http.MethodPost, "/api/events", strings.Join(bodies[i], "\n"),
				map[string]string{"Content-Type": "application/x-ndjson"})
			switch {
			case err != nil:
				errs <- err
			case a.status != http.StatusOK || a.body != fmt.Sprintf(`{"accepted":%d}`, lines):
				errs <- fmt.Errorf("batch to %s: %d %s", inst.name, a.status, a.body)
			default:
				errs <- nil
			}
		}()
	}
	for range in {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := make([][]sseclient.Message, len(ls))
	for i, l := range ls {
		got[i] = l.waitCount(t, 2*lines)
		checkConsecutive(t, "listener on "+l.name, got[i], 1)
		// One batch, then the other, each in line order.
		first, second := bodies[0], bodies[1]
		if got[i][0].Data != first[0] {
			first, second = second, first
		}
		checkData(t, "listener on "+l.name, got[i], append(append([]string(nil), first...), second...))
	}
	sameOrder(t, ls, got)
}

// natsClient is a plain JetStream client for arranging streams, closed at
// t's cleanup.
func natsClient(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// testCtx ends at t's cleanup, or after the polling deadline.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// TestNATSReplayKeepsTopicsAndNames: events posted with a topic and an event
// name reach listeners of that topic on every instance with their name; a
// listener of one topic resuming on an instance that joined later gets,
// from the stream, only that topic's events, with the same ids, names and
// data as the live listeners got.
func TestNATSReplayKeepsTopicsAndNames(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	a := startInstance(t, "a", ns.URL())
	live := a.listenOn(t, "/events?topic=scores", "")
	for i := range 12 {
		topic, name := "scores", "goal"
		if i%3 == 1 {
			topic, name = "chat", "line"
		}
		path := "/api/events?topic=" + topic + "&event=" + name
		if r, err := a.do(http.MethodPost, path, event(topic, i), nil); err != nil || r.status != http.StatusOK {
			t.Fatalf("POST %s: %v %d %s", path, err, r.status, r.body)
		}
	}
	seen := live.waitCount(t, 8)
	for _, m := range seen {
		if m.Type != "goal" || !strings.Contains(m.Data, `"p":"scores"`) {
			t.Fatalf("live listener of scores got %s %s", m.Type, m.Data)
		}
	}

	b := startInstance(t, "b", ns.URL())
	resumed := b.listenOn(t, "/events?topic=scores", seen[1].ID)
	got := resumed.waitCount(t, len(seen)-2)
	for i, m := range got {
		if w := seen[i+2]; m != w {
			t.Fatalf("replayed event %d: %+v, want %+v as live", i, m, w)
		}
	}
	b.mustPost(t, event("after", 0)) // the default topic: not for this listener
	if r, err := b.do(http.MethodPost, "/api/events?topic=scores&event=goal", event("scores", 99), nil); err != nil || r.status != http.StatusOK {
		t.Fatalf("POST: %v %d", err, r.status)
	}
	got = resumed.waitCount(t, len(seen)-1)
	if m := got[len(got)-1]; m.Type != "goal" || m.Data != event("scores", 99) || len(got) != len(seen)-1 {
		t.Fatalf("after the replay: %s", summary(got))
	}
}

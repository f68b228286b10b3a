package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/client"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/server"
)

// subscribe subscribes c with opts and closes the subscription when the
// test ends.
func subscribe(tb testing.TB, c *client.Client, opts *client.SubscribeOptions) *client.Subscription {
	tb.Helper()
	sub, err := c.Subscribe(testContext(tb), opts)
	if err != nil {
		tb.Fatalf("Subscribe: %v", err)
	}
	tb.Cleanup(func() { _ = sub.Close() })
	return sub
}

// next returns the subscription's next event, failing the test if none
// comes within waitFor.
func next(tb testing.TB, sub *client.Subscription) client.Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ev, err := sub.Next(ctx)
	if err != nil {
		tb.Fatalf("Next: %v", err)
	}
	return ev
}

// n returns the "n" field of an event's data.
func n(tb testing.TB, ev client.Event) int {
	tb.Helper()
	var v struct{ N *int }
	if err := json.Unmarshal(ev.Data, &v); err != nil || v.N == nil {
		tb.Fatalf("event %s has no n", got(client.Message{Event: ev}))
	}
	return *v.N
}

// TestSubscribe: a subscription receives the events of its topics in the
// order they were published, with their ids, names and topics; a Next that
// times out leaves the subscription as it was.
func TestSubscribe(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, nil)
	c := newClient(t, svc.url)
	all := subscribe(t, c, nil)
	some := subscribe(t, c, &client.SubscribeOptions{Topics: []string{"player", "ads"}})

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if ev, err := all.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing published: got %+v, %v; want the context's error", ev, err)
	}

	type published struct {
		topic, event string
	}
	sent := []published{{"", ""}, {"player", "start"}, {"ads", ""}, {"other", "x"}, {"player", "tick"}, {"player", "tick"}}
	for i, p := range sent[:4] {
		if err := c.Publish(testContext(t), p.topic, p.event, map[string]int{"n": i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PublishBatch(testContext(t), "player", "tick", []any{map[string]int{"n": 4}, map[string]int{"n": 5}}, nil); err != nil {
		t.Fatal(err)
	}
	check := func(sub *client.Subscription, want ...int) {
		t.Helper()
		var last uint64
		for _, i := range want {
			ev := next(t, sub)
			wantType, wantTopic := sent[i].event, sent[i].topic
			if wantType == "" {
				wantType = client.TypeMessage
			}
			if wantTopic == "" {
				wantTopic = client.DefaultTopic
			}
			if n(t, ev) != i || ev.Type != wantType || ev.Topic != wantTopic || ev.Gap || ev.Missed != nil {
				t.Fatalf("got %s, want event %d: %q on %q", got(client.Message{Event: ev}), i, wantType, wantTopic)
			}
			if num := idNumber(t, ev.ID); num <= last {
				t.Fatalf("id %s after number %d", ev.ID, last)
			} else {
				last = num
			}
			if sub.LastEventID() != ev.ID {
				t.Fatalf("LastEventID: got %q, want %q", sub.LastEventID(), ev.ID)
			}
		}
	}
	check(all, 0, 1, 2, 3, 4, 5)
	check(some, 1, 2, 4, 5)
}

// TestSubscribeResumes: streams the service ends (at their maximum age)
// are resumed with Last-Event-ID: across several reconnections, while
// events keep coming, nothing is lost and nothing comes twice.
func TestSubscribeResumes(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, func(c *server.Config) { c.MaxStreamAge = time.Second })
	c := newClient(t, svc.url)
	sub := subscribe(t, c, nil)

	var stop atomic.Bool
	sent := make(chan int, 1)
	t.Cleanup(func() { // a test that failed midway stops the producer too
		if !stop.Swap(true) {
			<-sent
		}
	})
	go func() {
		i := 0
		for ; !stop.Load(); i++ {
			if err := c.Publish(context.Background(), "", "", map[string]int{"n": i}, nil); err != nil {
				t.Errorf("Publish %d: %v", i, err)
				break
			}
			time.Sleep(5 * time.Millisecond) // a steady flow, not a flood
		}
		sent <- i
	}()
	want, total := 0, -1
	for total < 0 || want < total {
		if total < 0 && svc.srv.Stats().ListenersTotal >= 3 && !stop.Swap(true) {
			total = <-sent // two reconnections: enough
		}
		ev := next(t, sub)
		if ev.Gap {
			t.Fatalf("gap after event %d: %s", want-1, got(client.Message{Event: ev}))
		}
		if got := n(t, ev); got != want {
			t.Fatalf("got event %d, want %d", got, want)
		}
		want++
	}
	if ended := svc.srv.Stats().Ended[server.EndMaxAge]; ended < 2 {
		t.Fatalf("the service ended %d streams at their age, want at least 2", ended)
	}
	t.Logf("%d events over %d connections", total, svc.srv.Stats().ListenersTotal)
}

// TestSubscribeGap: a listener that falls further behind than the service's
// buffer gets a gap event with the exact count of what it lost, and goes
// on: what it received and what it was told it missed add up to what was
// published.
func TestSubscribeGap(t *testing.T) {
	t.Parallel()
	const batch = 50
	svc := startService(t, 8, func(c *server.Config) { c.MaxBatchEvents = batch })
	c := newClient(t, svc.url)
	sub := subscribe(t, c, nil)
	events := make([]any, batch)
	for i := range events {
		events[i] = map[string]int{"n": i}
	}
	gaps := 0
	for round := 0; gaps == 0; round++ {
		if round == 20 {
			t.Fatal("no gap after 20 batches of 50 events into a buffer of 8")
		}
		// The 50 events are published at once: the listener cannot read
		// them before most are overwritten.
		if _, err := c.PublishBatch(testContext(t), "", "", events, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(testContext(t), "", "", []byte(`{"end":true}`), nil); err != nil {
			t.Fatal(err)
		}
		var received, missed uint64
		last, lastID := -1, ""
		for {
			ev := next(t, sub)
			if ev.Gap {
				if ev.Missed == nil || ev.Type != client.TypeGap || ev.Topic != "" || ev.ID != lastID && lastID != "" {
					t.Fatalf("gap: got %s, want a count and the id of the event before (%q)", got(client.Message{Event: ev}), lastID)
				}
				gaps++
				missed += *ev.Missed
				continue
			}
			lastID = ev.ID
			if string(ev.Data) == `{"end":true,"user_ip":"127.0.0.1"}` {
				break
			}
			if i := n(t, ev); i <= last {
				t.Fatalf("event %d after %d", i, last)
			} else {
				last = i
			}
			received++
		}
		if received+missed != batch {
			t.Fatalf("round %d: received %d, told %d were missed: want %d in all", round, received, missed, batch)
		}
	}
}

// TestSubscribeFrom: SubscribeOptions.LastEventID resumes a first
// connection: exactly after an event still held, with a gap of the exact
// size after one no longer held, with a gap of unknown size after an id the
// service never gave out.
func TestSubscribeFrom(t *testing.T) {
	t.Parallel()
	svc := startService(t, 8, nil)
	c := newClient(t, svc.url)
	l := listen(t, svc.url, "")
	ids := make([]string, 20)
	for i := range ids {
		if err := c.Publish(testContext(t), "", "", map[string]int{"n": i}, nil); err != nil {
			t.Fatal(err)
		}
		ids[i] = l.next(t).ID
	}
	for _, tc := range []struct {
		name, from string
		missed     string // "": no gap; "null": unknown
		first      int    // the first event after the gap
	}{
		{"held", ids[15], "", 16},
		{"no longer held", ids[0], "11", 12}, // 8 held: 12 to 19
		{"never given out", "x" + ids[0], "null", 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := subscribe(t, c, &client.SubscribeOptions{LastEventID: tc.from})
			if sub.LastEventID() != tc.from {
				t.Fatalf("LastEventID before any event: got %q, want %q", sub.LastEventID(), tc.from)
			}
			if tc.first == len(ids) {
				if err := c.Publish(testContext(t), "", "", map[string]int{"n": 20}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if tc.missed != "" {
				ev := next(t, sub)
				missed := "null"
				if ev.Missed != nil {
					missed = strconv.FormatUint(*ev.Missed, 10)
				}
				if !ev.Gap || missed != tc.missed || ev.ID != tc.from {
					t.Fatalf("got %s, want a gap of %s with the id resumed from", got(client.Message{Event: ev}), tc.missed)
				}
				if sub.LastEventID() != tc.from {
					t.Fatalf("LastEventID after the gap: got %q, want %q", sub.LastEventID(), tc.from)
				}
			}
			for i := tc.first; i < len(ids); i++ {
				if ev := next(t, sub); ev.ID != ids[i] || n(t, ev) != i {
					t.Fatalf("got %s, want event %d (%s)", got(client.Message{Event: ev}), i, ids[i])
				}
			}
			if tc.first == len(ids) {
				if ev := next(t, sub); n(t, ev) != 20 {
					t.Fatalf("got %s, want the live event", got(client.Message{Event: ev}))
				}
			}
		})
	}
}

// TestSubscribeRefused: refusals that trying again cannot change are
// returned by Subscribe, typed.
func TestSubscribeRefused(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, func(c *server.Config) { c.ListenTokens = []string{"listen"} })
	anonymous := newClient(t, svc.url)
	wrong := newClient(t, svc.url)
	wrong.ListenToken = "guess"
	publisher := newClient(t, svc.url)
	publisher.PublishToken = "listen" // not a listen token
	authorized := newClient(t, svc.url)
	authorized.ListenToken = "listen"
	for _, tc := range []struct {
		name     string
		c        *client.Client
		topics   []string
		status   int
		sentinel error
	}{
		{"no token", anonymous, nil, 401, client.ErrUnauthorized},
		{"wrong token", wrong, nil, 401, client.ErrUnauthorized},
		{"publish token", publisher, nil, 401, client.ErrUnauthorized},
		{"bad topic", authorized, []string{"a b"}, 400, client.ErrInvalid},
	} {
		sub, err := tc.c.Subscribe(testContext(t), &client.SubscribeOptions{Topics: tc.topics})
		var e *client.Error
		if sub != nil || !errors.As(err, &e) || e.StatusCode != tc.status || !errors.Is(err, tc.sentinel) || client.IsRetryable(err) {
			t.Errorf("%s: got %v, %v; want a %d", tc.name, sub, err, tc.status)
		}
	}
	sub := subscribe(t, authorized, &client.SubscribeOptions{Topics: []string{"a"}})
	if err := publisher.Publish(testContext(t), "a", "", []byte(`{"n":1}`), nil); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, sub); n(t, ev) != 1 {
		t.Fatalf("got %s", got(client.Message{Event: ev}))
	}
}

// TestSubscribeTurnedAway: a listener the service turns away (200, a
// comment and a retry hint: it is full) comes back after the hint, without
// hammering it, and gets the stream once there is room.
func TestSubscribeTurnedAway(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, func(c *server.Config) {
		c.MaxListeners = 1
		c.Heartbeat = 50 * time.Millisecond // the first listener's departure is noticed at once
	})
	c := newClient(t, svc.url)
	first := subscribe(t, c, nil)
	start := time.Now()
	second := subscribe(t, c, &client.SubscribeOptions{MaxDelay: 300 * time.Millisecond})
	turnedAway := func() uint64 { return svc.srv.Stats().TurnedAway[server.TurnAwayLimit] }
	eventually(t, "turned away twice", func() bool { return turnedAway() >= 2 })
	// The hint is 100 to 200 ms: never more than one attempt per 100 ms.
	if n, most := turnedAway(), 1+uint64(time.Since(start)/(100*time.Millisecond)); n > most {
		t.Fatalf("turned away %d times in %v: came back before the hint", n, time.Since(start))
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// The second listener has no id to resume from: publish until it gets
	// an event.
	for i := 0; ; i++ {
		if err := c.Publish(testContext(t), "", "", map[string]int{"n": i}, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(testContext(t), 50*time.Millisecond)
		ev, err := second.Next(ctx)
		cancel()
		if err == nil {
			if ev.Gap || n(t, ev) > i {
				t.Fatalf("got %s after publishing %d", got(client.Message{Event: ev}), i)
			}
			break
		}
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > waitFor {
			t.Fatalf("Next: %v, after %v", err, time.Since(start))
		}
	}
}

// TestSubscribeContext: the subscription's context bounds it: once it is
// done, Next returns its error (after the events already read).
func TestSubscribeContext(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, nil)
	c := newClient(t, svc.url)
	ctx, cancel := context.WithCancelCause(context.Background())
	sub, err := c.Subscribe(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := c.Publish(testContext(t), "", "", []byte(`{"n":0}`), nil); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, sub); n(t, ev) != 0 {
		t.Fatalf("got %s", got(client.Message{Event: ev}))
	}
	stop := errors.New("enough")
	cancel(stop)
	for range 2 {
		if _, err := sub.Next(testContext(t)); !errors.Is(err, stop) {
			t.Fatalf("Next after the context ended: got %v, want its cause", err)
		}
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(testContext(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after Close: got %v, want ErrClosed", err)
	}
}

// TestSubscribeOneByOne: events are handed over one at a time, so many
// events reach a subscription that reads slowly, in order.
func TestSubscribeOneByOne(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, nil)
	c := newClient(t, svc.url)
	sub := subscribe(t, c, nil)
	const total = 500
	events := make([]any, 100)
	for b := range total / len(events) {
		for i := range events {
			events[i] = map[string]int{"n": b*len(events) + i}
		}
		if _, err := c.PublishBatch(testContext(t), "", "", events, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range total {
		if ev := next(t, sub); n(t, ev) != i {
			t.Fatalf("got %s, want event %d", got(client.Message{Event: ev}), i)
		}
		if i%100 == 0 {
			time.Sleep(10 * time.Millisecond) // a reader that pauses
		}
	}
}

// TestSubscribeFiltered: a subscription with Where and Sample gets only the
// events whose fields match, the sampled subset of them, and a malformed
// term is refused as invalid.
func TestSubscribeFiltered(t *testing.T) {
	t.Parallel()
	svc := startService(t, 0, nil)
	c := newClient(t, svc.url)
	errs := subscribe(t, c, &client.SubscribeOptions{Where: []string{"type:error", "type:fatal", "media.id:1"}})
	none := subscribe(t, c, &client.SubscribeOptions{Where: []string{"type:error"}, Sample: 1e-12})
	for i, ev := range []string{
		`{"type":"error","media":{"id":"1"}}`, `{"type":"info","media":{"id":"1"}}`,
		`{"type":"fatal","media":{"id":"2"}}`, `{"type":"fatal","media":{"id":"1"}}`,
	} {
		body := strings.Replace(ev, "{", fmt.Sprintf(`{"n":%d,`, i), 1)
		if err := c.Publish(testContext(t), "", "", []byte(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int{0, 3} {
		if got := n(t, next(t, errs)); got != want {
			t.Fatalf("got event %d, want %d", got, want)
		}
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if ev, err := none.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a sample of 1e-12 got %+v, %v", ev, err)
	}
	sub, err := c.Subscribe(testContext(t), &client.SubscribeOptions{Where: []string{"no colon"}})
	if sub != nil || !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "where") {
		t.Fatalf("a malformed term: got %v, %v; want a 400 naming where", sub, err)
	}
}

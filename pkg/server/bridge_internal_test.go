package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// joinedBridge is a Bridge that has joined a stream at next and is never
// asked to publish or replay here: the tests below only look at resume
// plans.
type joinedBridge struct {
	id   natsbridge.Identity
	next uint64
}

func (b joinedBridge) Publish(context.Context, natsbridge.Message) (natsbridge.Ack, error) {
	return natsbridge.Ack{}, nil
}
func (b joinedBridge) PublishBatch(context.Context, []natsbridge.Message) (natsbridge.BatchAck, error) {
	return natsbridge.BatchAck{}, nil
}
func (b joinedBridge) OpenReplay(context.Context, natsbridge.Identity, uint64, []string) (*natsbridge.Replay, error) {
	return nil, natsbridge.ErrUnavailable
}
func (b joinedBridge) Position() (natsbridge.Identity, uint64) { return b.id, b.next }
func (b joinedBridge) Status() natsbridge.Status {
	return natsbridge.Status{State: natsbridge.StateReady, Identity: b.id, Publishable: true}
}

// TestResumePlanOnASharedStream checks how a listener resuming with the id of
// sequence n is planned to be served, on an instance whose consumer started
// at sequence 46 and has consumed some of the stream, including while Deliver
// is between recording a sequence and making its frame visible: the
// sequence the replay from the stream must reach (target), and whether n is
// known to have been given out (verified, so that nothing is passed over for
// an id never given out before the stream says so).
func TestResumePlanOnASharedStream(t *testing.T) {
	t.Parallel()
	id := natsbridge.Identity{Stream: "S", Created: time.Unix(1_700_000_000, 0).UTC()}
	type want struct {
		target   uint64
		verified bool
	}
	tests := []struct {
		name      string
		delivered []uint64 // consumed and in the ring
		pending   uint64   // being delivered when the listener resumes (0: none)
		n         uint64   // the listener's last id
		want      want
	}{
		{"nothing consumed yet", nil, 0, 40, want{45, false}},
		{"first event being delivered", nil, 46, 40, want{46, false}},
		{"older than what was consumed", []uint64{46, 47}, 0, 40, want{47, false}},
		{"older, the next event being delivered", []uint64{46, 47}, 48, 40, want{48, false}},
		{"just before the first consumed", []uint64{46, 47}, 0, 45, want{45, false}},
		{"up to date", []uint64{46, 47}, 0, 47, want{47, true}},
		{"up to date, the next event being delivered", []uint64{46, 47}, 48, 47, want{47, true}},
		{"within the ring", []uint64{46, 47, 48}, 0, 46, want{46, true}},
		{"ahead of this instance", []uint64{46, 47}, 0, 50, want{47, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ring := fanout.New(fanout.Options{Size: 64})
			defer ring.Close()
			cfg := DefaultConfig()
			cfg.Addr = "127.0.0.1:0"
			s, err := New(&cfg, Deps{Ring: ring, Bridge: joinedBridge{id: id, next: 46}})
			if err != nil {
				t.Fatal(err)
			}
			deliver := func(seq uint64) {
				s.Deliver(natsbridge.Delivery{Identity: id, Stored: time.Now(), Topic: DefaultTopic, Data: []byte(`{}`), Seq: seq})
			}
			for _, seq := range tc.delivered {
				deliver(seq)
			}
			var plan resumePlan
			resume := func() {
				lastID := s.adoptIdentity().space.appendID(nil, tc.n)
				sub, p, err := s.subscribe(lastID, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				_ = sub.Close()
				plan = p
			}
			if tc.pending == 0 {
				resume()
			} else {
				// The listener resumes while Deliver has recorded the
				// pending sequence and not yet made its frame visible.
				s.testHook = func(where string) {
					if where == "deliver" {
						resume()
					}
				}
				deliver(tc.pending)
			}
			r := plan.replay
			if r == nil || plan.gap {
				t.Fatalf("plan %+v: want a join with the stream, no gap", plan)
			}
			if got := (want{r.target, r.verified}); got != tc.want || r.after != tc.n {
				t.Errorf("plan after %d: %+v, want %+v", r.after, got, tc.want)
			}
		})
	}
}

// deliverTo returns a server on a joined bridge with a ring of 64 frames, and
// a subscriber to every topic of that ring.
func deliverTo(t *testing.T, id natsbridge.Identity) (*Server, *fanout.Subscriber) {
	t.Helper()
	ring := fanout.New(fanout.Options{Size: 64})
	t.Cleanup(func() { _ = ring.Close() })
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(&cfg, Deps{Ring: ring, Bridge: joinedBridge{id: id, next: 1}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ring.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return s, sub
}

// frames reads what sub has, as strings.
func frames(sub *fanout.Subscriber) []string {
	batch, _ := sub.Read(make([]*fanout.Frame, 0, 64))
	out := make([]string, 0, len(batch))
	for _, f := range batch {
		out = append(out, string(f.Bytes()))
	}
	return out
}

// TestDeliverChecksMessages: what Deliver reads from the stream is checked as
// a POST is: a message without a valid topic (a subject not under the
// prefix, or one that is no topic name), with an event name that is not
// one (or is the service's own "gap"), or whose data is not one JSON object
// is skipped and counted, never framed; data that is valid but not compact
// is compacted, so that it cannot span lines.
func TestDeliverChecksMessages(t *testing.T) {
	t.Parallel()
	id := natsbridge.Identity{Stream: "S", Created: time.Unix(1_700_000_000, 0).UTC()}
	s, sub := deliverTo(t, id)
	msgs := []natsbridge.Delivery{
		{Topic: DefaultTopic, Data: []byte(`{"a":1}`)},
		{Topic: "", Data: []byte(`{"a":2}`)},
		{Topic: "a..b", Data: []byte(`{"a":3}`)},
		{Topic: "a b", Data: []byte(`{"a":4}`)},
		{Topic: DefaultTopic, Event: "gap", Data: []byte(`{"missed":0}`)},
		{Topic: DefaultTopic, Event: "bad name", Data: []byte(`{"a":5}`)},
		{Topic: DefaultTopic, Event: strings.Repeat("e", 65), Data: []byte(`{"a":6}`)},
		{Topic: DefaultTopic, Data: []byte(`[1]`)},
		{Topic: DefaultTopic, Data: []byte(`nope`)},
		{Topic: DefaultTopic, Data: []byte("{\"a\":1}\n\nevent: gap\ndata: {}")},
		{Topic: DefaultTopic, Data: []byte("{\"a\":\"x\ny\"}")},
		{Topic: DefaultTopic, Data: []byte("{\"a\":\"\xff\"}")},
		{Topic: DefaultTopic, Data: nil},
		{Topic: "t.x", Event: "play", Data: []byte("{ \"a\" : 1 ,\n \"b\":[1, 2] }")},
	}
	for i, d := range msgs {
		d.Identity, d.Seq, d.Stored = id, uint64(i+1), time.Now()
		s.Deliver(d)
	}
	sp := s.epoch.Load().space
	want := []string{
		"id: " + string(sp.appendID(nil, 1)) + "\ndata: {\"a\":1}\n\n",
		"id: " + string(sp.appendID(nil, 14)) + "\nevent: play\ntopic: t.x\ndata: {\"a\":1,\"b\":[1,2]}\n\n",
	}
	if got := frames(sub); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("frames:\n%q\nwant:\n%q", got, want)
	}
	if got := s.Stats().ConsumeInvalid; got != uint64(len(msgs)-2) {
		t.Fatalf("Stats().ConsumeInvalid = %d, want %d", got, len(msgs)-2)
	}
}

// TestGapFramesHaveNoID: the gap events Deliver publishes, when the stream is
// replaced and when messages expired before they were read, carry no id, so
// a listener's last id stays the last event it received; the ring keys keep
// increasing all the same.
func TestGapFramesHaveNoID(t *testing.T) {
	t.Parallel()
	a := natsbridge.Identity{Stream: "S", Created: time.Unix(1_700_000_000, 0).UTC()}
	b := natsbridge.Identity{Stream: "S", Created: time.Unix(1_700_000_100, 0).UTC()}
	s, sub := deliverTo(t, a)
	deliver := func(id natsbridge.Identity, seq uint64) {
		s.Deliver(natsbridge.Delivery{Identity: id, Seq: seq, Topic: DefaultTopic, Data: []byte(`{}`), Stored: time.Now()})
	}
	deliver(a, 1)
	spA := s.epoch.Load().space
	deliver(b, 1) // a new incarnation
	spB := s.epoch.Load().space
	deliver(b, 2)
	deliver(b, 5) // 3 and 4 expired unread
	const gap = "event: gap\ndata: {\"missed\":null}\n\n"
	frame := func(sp *idSpace, n uint64) string { return "id: " + string(sp.appendID(nil, n)) + "\ndata: {}\n\n" }
	want := []string{frame(spA, 1), gap, frame(spB, 1), frame(spB, 2), gap, frame(spB, 5)}
	if got := frames(sub); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("frames:\n%q\nwant:\n%q", got, want)
	}
}

// nullSink is a sink that keeps nothing.
type nullSink struct{ n int }

func (w *nullSink) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *nullSink) Flush() error                { w.n = 0; return nil }
func (w *nullSink) Buffered() int               { return w.n }

// TestBurstIsNotLag: frames a stream finds together that had all arrived a
// moment before (the consumer of a shared stream hands over what it received
// in one go) do not tell the write budget that the stream lags behind them,
// so that a sparse stream fed through the bridge is not made to gather;
// frames that waited do.
func TestBurstIsNotLag(t *testing.T) {
	t.Parallel()
	ring := fanout.New(fanout.Options{Size: 64})
	defer ring.Close()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	s, err := New(&cfg, Deps{Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	st := &stream{srv: s}
	w := &nullSink{}
	for _, tc := range []struct {
		name  string
		age   time.Duration
		ready uint64
	}{
		{"a burst that just arrived", 100 * time.Microsecond, 1},
		{"frames that waited", 10 * time.Millisecond, 3},
	} {
		before := s.budget.ready.Load()
		if err := st.flush(w, time.Now().Add(-tc.age).UnixNano(), 3, 3); err != nil {
			t.Fatal(err)
		}
		if got := s.budget.ready.Load() - before; got != tc.ready {
			t.Errorf("%s: the budget counted %d frames ready, want %d", tc.name, got, tc.ready)
		}
	}
}

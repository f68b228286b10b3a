package natsbridge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
)

func TestPublishIsConsumed(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, rec := startBridge(t, testConfig(s.URL()))

	sent := []natsbridge.Message{
		{Topic: "video.play", Event: "play", Data: []byte(`{"a":1}`)},
		{Data: []byte(`{"b":2}`)},
		{Topic: "x_y-z", Event: "ünïcode name", Data: []byte(`{"c":"\u00e9"}`)},
	}
	for i, m := range sent {
		if seq := publish(t, b, m); seq != uint64(i+1) {
			t.Fatalf("Publish %d: seq %d, want %d", i, seq, i+1)
		}
	}
	got := rec.waitLen(t, len(sent))
	id := b.Status().Identity
	if id.Stream != "TEST_EVENTS" || id.Created.IsZero() {
		t.Fatalf("Status().Identity = %+v", id)
	}
	wantTopics := []string{"video.play", natsbridge.DefaultTopic, "x_y-z"}
	for i, d := range got {
		if d.Seq != uint64(i+1) || d.Topic != wantTopics[i] || d.Event != sent[i].Event ||
			!bytes.Equal(d.Data, sent[i].Data) || !d.Identity.Equal(id) || d.Stored.IsZero() {
			t.Errorf("delivery %d = %+v, want seq %d topic %q event %q data %s", i, d, i+1, wantTopics[i], sent[i].Event, sent[i].Data)
		}
	}
	st := b.Stats()
	if st.Published != 3 || st.Consumed != 3 || st.PublishFailed != 0 {
		t.Errorf("Stats = %+v, want 3 published, 3 consumed", st)
	}
	if st := b.Status(); !st.Connected || st.State != natsbridge.StateReady || st.LastSeq != 3 || st.Reason != "" {
		t.Errorf("Status = %+v", st)
	}
}

func TestStartConsumesOnlyNewMessages(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	first, _ := startBridge(t, testConfig(s.URL()))
	for i := range 5 {
		publish(t, first, msg("a", i))
	}
	second, rec := startBridge(t, testConfig(s.URL()))
	publish(t, second, msg("a", 5))
	got := rec.waitLen(t, 1)
	if len(got) != 1 || got[0].Seq != 6 {
		t.Fatalf("second bridge got %+v, want only seq 6", got)
	}
}

// TestBridgesShareOneOrder runs several bridges on one stream, each with
// concurrent publishers: every bridge receives every message exactly once,
// all in the same order, with consecutive sequences.
func TestBridgesShareOneOrder(t *testing.T) {
	t.Parallel()
	for _, bridges := range []int{2, 3} {
		t.Run(fmt.Sprintf("bridges=%d", bridges), func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			const publishers, perPublisher = 4, 150
			bs := make([]*natsbridge.Bridge, 0, bridges)
			recs := make([]*recorder, 0, bridges)
			for range bridges {
				b, rec := startBridge(t, testConfig(s.URL()))
				bs, recs = append(bs, b), append(recs, rec)
			}
			var wg sync.WaitGroup
			for bi, b := range bs {
				for p := range publishers {
					wg.Go(func() {
						for i := range perPublisher {
							m := natsbridge.Message{Topic: "t", Data: fmt.Appendf(nil, `{"b":%d,"p":%d,"i":%d}`, bi, p, i)}
							if _, err := b.Publish(context.Background(), m); err != nil {
								t.Errorf("Publish: %v", err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			total := bridges * publishers * perPublisher
			want := recs[0].waitLen(t, total)
			checkConsecutive(t, want, 1)
			seen := make(map[string]bool, total)
			for _, d := range want {
				if seen[string(d.Data)] {
					t.Fatalf("payload %s delivered twice", d.Data)
				}
				seen[string(d.Data)] = true
			}
			for i, rec := range recs[1:] {
				got := rec.waitLen(t, total)
				if len(got) != total {
					t.Fatalf("bridge %d: %d deliveries, want %d", i+1, len(got), total)
				}
				for j := range got {
					if got[j].Seq != want[j].Seq || !bytes.Equal(got[j].Data, want[j].Data) {
						t.Fatalf("bridge %d delivery %d = seq %d %s, bridge 0 has seq %d %s",
							i+1, j, got[j].Seq, got[j].Data, want[j].Seq, want[j].Data)
					}
				}
			}
			// Nothing more arrives later.
			time.Sleep(100 * time.Millisecond)
			for i, rec := range recs {
				if n := rec.len(); n != total {
					t.Errorf("bridge %d: %d deliveries after the end, want %d", i, n, total)
				}
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, rec := startBridge(t, testConfig(s.URL()))
	m := natsbridge.Message{Topic: "a", MsgID: "key-1", Data: []byte(`{"x":1}`)}
	first := publish(t, b, m)
	again := publish(t, b, m)
	if first != again {
		t.Fatalf("retried publish: seq %d, want the first one's %d", again, first)
	}
	publish(t, b, msg("a", 2))
	got := rec.waitLen(t, 2)
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("deliveries %+v, want seq 1 and 2 only", got)
	}
	if st := b.Stats(); st.Published != 2 || st.Duplicates != 1 {
		t.Fatalf("Stats = %+v, want 2 published, 1 duplicate", st)
	}
}

// TestMessageIDReused: a message id stored with a fingerprint is, for a
// message with the same fingerprint, a duplicate (a retry), and for one with
// another fingerprint, ErrIDReused with the first one's sequence; nothing is
// stored either way. For a batch, a line reused with another fingerprint
// fails the batch before anything of it is stored.
func TestMessageIDReused(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"atomic", "pipelined"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			b, rec := startBridge(t, testConfig(s.URL()))
			b.SetAtomicBatches(mode == "atomic")
			m := natsbridge.Message{Topic: "a", MsgID: natsbridge.EventMsgID("k"), Fingerprint: "f1", Data: []byte(`{"x":1}`)}
			first := publish(t, b, m)
			if ack, err := b.Publish(testCtx(t), m); err != nil || !ack.Duplicate || ack.Seq != first {
				t.Fatalf("same id, same fingerprint: %+v, %v; want a duplicate of %d", ack, err, first)
			}
			other := m
			other.Fingerprint, other.Data = "f2", []byte(`{"x":2}`)
			if ack, err := b.Publish(testCtx(t), other); !errors.Is(err, natsbridge.ErrIDReused) || ack.Seq != first {
				t.Fatalf("same id, other fingerprint: %+v, %v; want ErrIDReused with seq %d", ack, err, first)
			}

			batch := lines("kb", 5)
			for i := range batch {
				batch[i].Fingerprint = fmt.Sprint("line-", i)
			}
			if ack, err := b.PublishBatch(testCtx(t), batch); err != nil || ack.Acked != 5 || ack.Duplicates != 0 {
				t.Fatalf("batch: %+v, %v", ack, err)
			}
			if ack, err := b.PublishBatch(testCtx(t), batch); err != nil || ack.Acked != 5 || ack.Duplicates != 5 {
				t.Fatalf("batch retried: %+v, %v; want 5 duplicates", ack, err)
			}
			reused := lines("kb", 7)
			for i := range reused {
				reused[i].Fingerprint = fmt.Sprint("other-", i)
			}
			if ack, err := b.PublishBatch(testCtx(t), reused); !errors.Is(err, natsbridge.ErrIDReused) || ack.Acked != 0 {
				t.Fatalf("another batch with the key: %+v, %v; want ErrIDReused, nothing acked", ack, err)
			}
			publish(t, b, msg("end", 0))
			got := rec.waitLen(t, 7)
			if len(got) != 7 || got[6].Topic != "end" {
				t.Fatalf("%d deliveries, want 7 (the event, the batch, the marker): %+v", len(got), got)
			}
			if st := b.Stats(); st.IDReused != 2 || st.Published != 7 {
				t.Fatalf("Stats = %+v, want 2 ids reused, 7 published", st)
			}
		})
	}
}

func TestPublishRejectsInvalidMessages(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, _ := startBridge(t, testConfig(s.URL()))
	for _, tc := range []struct {
		name string
		m    natsbridge.Message
	}{
		{"topic with space", natsbridge.Message{Topic: "a b"}},
		{"topic with wildcard", natsbridge.Message{Topic: "a.*"}},
		{"topic with empty token", natsbridge.Message{Topic: "a..b"}},
		{"topic too long", natsbridge.Message{Topic: strings.Repeat("a", natsbridge.MaxTopicLen+1)}},
		{"event with line break", natsbridge.Message{Event: "a\nb"}},
		{"event with leading space", natsbridge.Message{Event: " a"}},
		{"msg id with CR", natsbridge.Message{MsgID: "a\rb"}},
		{"msg id too long", natsbridge.Message{MsgID: strings.Repeat("k", 257)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := b.Publish(testCtx(t), tc.m); !errors.Is(err, natsbridge.ErrInvalidMessage) {
				t.Errorf("Publish: %v, want ErrInvalidMessage", err)
			}
			if n, err := b.PublishBatch(testCtx(t), []natsbridge.Message{msg("a", 1), tc.m}); n.Acked != 0 || !errors.Is(err, natsbridge.ErrInvalidMessage) {
				t.Errorf("PublishBatch: %d, %v, want 0, ErrInvalidMessage", n, err)
			}
		})
	}
}

func TestPublishTooLargeIsRejected(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, func(o *natstest.Options) { o.MaxPayload = 1024 })
	b, _ := startBridge(t, testConfig(s.URL()))
	_, err := b.Publish(testCtx(t), natsbridge.Message{Data: bytes.Repeat([]byte("x"), 2048)})
	if !errors.Is(err, natsbridge.ErrRejected) {
		t.Fatalf("Publish of 2 KiB with a 1 KiB limit: %v, want ErrRejected", err)
	}
}

func TestStartAndCloseErrors(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, _ := startBridge(t, testConfig(s.URL()))
	if err := b.Start(context.Background()); !errors.Is(err, natsbridge.ErrStarted) {
		t.Errorf("second Start: %v, want ErrStarted", err)
	}
	closeBridge(t, b)
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if _, err := b.Publish(context.Background(), msg("a", 1)); !errors.Is(err, natsbridge.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
	if st := b.Status(); st.State != natsbridge.StateClosed || st.Connected {
		t.Errorf("Status after Close = %+v", st)
	}

	never, err := natsbridge.New(testConfig(s.URL()), func(natsbridge.Delivery) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := never.Close(context.Background()); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := never.Start(context.Background()); !errors.Is(err, natsbridge.ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

// TestCloseIsBounded closes a bridge whose handler is stuck: Close gives up
// when its context ends.
func TestCloseIsBounded(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	b, err := natsbridge.New(testConfig(s.URL()), func(natsbridge.Delivery) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(t, b, msg("a", 1))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a stuck handler: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	close(release) // lets the supervisor return, for goleak
}

func TestStreamSettings(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	cfg := testConfig(s.URL())
	cfg.MaxAge = time.Minute
	cfg.Storage = natsbridge.StorageFile
	b, _ := startBridge(t, cfg)
	info, err := client(t, s.URL()).Stream(testCtx(t), cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	c := info.CachedInfo().Config
	if len(c.Subjects) != 1 || c.Subjects[0] != "test.events.>" || c.Storage != jetstream.FileStorage ||
		c.MaxAge != time.Minute || c.Duplicates != time.Minute || c.Retention != jetstream.LimitsPolicy ||
		c.Replicas != 1 || !c.AllowAtomicPublish {
		t.Fatalf("stream config = %+v", c)
	}
	if !b.Status().Identity.Created.Equal(info.CachedInfo().Created) {
		t.Fatalf("identity %v, stream created %v", b.Status().Identity, info.CachedInfo().Created)
	}
	if !b.Status().AtomicBatches {
		t.Fatal("Status().AtomicBatches = false on a stream that allows them")
	}
}

// TestExistingStream starts a bridge on a stream that already exists.
func TestExistingStream(t *testing.T) {
	t.Parallel()
	base := func() jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: "TEST_EVENTS", Subjects: []string{"test.events.>"}, Storage: jetstream.MemoryStorage,
			MaxAge: time.Hour, Retention: jetstream.LimitsPolicy,
		}
	}
	for _, tc := range []struct {
		name    string
		change  func(*jetstream.StreamConfig)
		problem string // "" when the bridge starts
	}{
		{"compatible, max age updated", func(*jetstream.StreamConfig) {}, ""},
		{"other subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"other.>"} }, "subjects"},
		{"extra subject", func(c *jetstream.StreamConfig) { c.Subjects = append(c.Subjects, "more.>") }, "subjects"},
		{"file storage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.FileStorage }, "storage file, configured memory"},
		{"interest retention", func(c *jetstream.StreamConfig) { c.Retention = jetstream.InterestPolicy }, "retention"},
		{"no ack", func(c *jetstream.StreamConfig) { c.NoAck = true }, "no_ack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := natstest.RunServer(t)
			cfg := base()
			tc.change(&cfg)
			js := client(t, s.URL())
			if _, err := js.CreateStream(testCtx(t), cfg); err != nil {
				t.Fatal(err)
			}
			b, err := natsbridge.New(testConfig(s.URL()), func(natsbridge.Delivery) {}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closeBridge(t, b) })
			err = b.Start(testCtx(t))
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				info, err := js.Stream(testCtx(t), cfg.Name)
				if err != nil {
					t.Fatal(err)
				}
				if c := info.CachedInfo().Config; c.MaxAge != natsbridge.DefaultMaxAge || !c.AllowAtomicPublish {
					t.Fatalf("max age %v atomic %v, want updated to %v and true", c.MaxAge, c.AllowAtomicPublish, natsbridge.DefaultMaxAge)
				}
				return
			}
			if !errors.Is(err, natsbridge.ErrConflict) || !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("Start: %v, want ErrConflict naming %q", err, tc.problem)
			}
			if st := b.Status(); st.State != natsbridge.StateClosed {
				t.Fatalf("state after a refused Start = %v", st.State)
			}
		})
	}
}

func TestStreamCapturingTheSubjectsIsAConflict(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	if _, err := client(t, s.URL()).CreateStream(testCtx(t), jetstream.StreamConfig{
		Name: "SOMEONE_ELSE", Subjects: []string{"test.>"},
	}); err != nil {
		t.Fatal(err)
	}
	b, err := natsbridge.New(testConfig(s.URL()), func(natsbridge.Delivery) {}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBridge(t, b) })
	if err := b.Start(testCtx(t)); !errors.Is(err, natsbridge.ErrConflict) {
		t.Fatalf("Start: %v, want ErrConflict", err)
	}
}

func TestStartWithoutJetStream(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t, func(o *natstest.Options) { o.JetStream = false })
	b, err := natsbridge.New(testConfig(s.URL()), func(natsbridge.Delivery) {}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBridge(t, b) })
	if err := b.Start(testCtx(t)); !errors.Is(err, natsbridge.ErrNoJetStream) {
		t.Fatalf("Start: %v, want ErrNoJetStream", err)
	}
}

func TestPublishWithEndedContext(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, rec := startBridge(t, testConfig(s.URL()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Publish(ctx, msg("a", 1)); !errors.Is(err, natsbridge.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a canceled context: %v, want ErrUnavailable wrapping Canceled", err)
	}
	publish(t, b, msg("a", 2))
	if got := rec.waitLen(t, 1); got[0].Seq != 1 || string(got[0].Data) != `{"n":2}` {
		t.Fatalf("first delivery %+v: the canceled publish was sent", got[0])
	}
}

// TestDeliveryOfAForeignSubject: a message stored on a subject under the
// prefix that is not a topic (stored by another client) is delivered with no
// topic, so that the receiver can refuse it, not on a topic made up from it.
func TestDeliveryOfAForeignSubject(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, rec := startBridge(t, testConfig(s.URL()))
	js := client(t, s.URL())
	for _, subject := range []string{"test.events.not:a:topic", "test.events.ok"} {
		if _, err := js.Publish(testCtx(t), subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	got := rec.waitLen(t, 2)
	if got[0].Topic != "" || got[1].Topic != "ok" {
		t.Fatalf("topics %q and %q, want \"\" and \"ok\"", got[0].Topic, got[1].Topic)
	}
	_ = b
}

// TestPublishableFollowsTheServer: Status.Publishable says whether the bridge
// can publish now; while it cannot, Publish fails at once, and it can again
// once the server is back.
func TestPublishableFollowsTheServer(t *testing.T) {
	t.Parallel()
	s := natstest.RunServer(t)
	b, _ := startBridge(t, testConfig(s.URL()))
	if st := b.Status(); !st.Publishable || st.PublishReason != "" {
		t.Fatalf("joined: %+v, want publishable", st)
	}
	s.Shutdown()
	testutil.Poll(t, wait, func() error {
		if st := b.Status(); st.Publishable || st.PublishReason == "" {
			return fmt.Errorf("server down: %+v", st)
		}
		return nil
	})
	began := time.Now()
	if _, err := b.Publish(testCtx(t), msg("a", 1)); !errors.Is(err, natsbridge.ErrUnavailable) {
		t.Fatalf("Publish while not publishable: %v, want ErrUnavailable", err)
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Fatalf("Publish took %v to fail", took)
	}
	s.Restart(t)
	testutil.Poll(t, wait, func() error {
		if st := b.Status(); !st.Publishable {
			return fmt.Errorf("server back: %+v", st)
		}
		return nil
	})
	publish(t, b, msg("a", 2))
}

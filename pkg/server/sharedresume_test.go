package server

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/testutil"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natsbridge"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// sharedInstance is a Server on a real bridge to an embedded NATS server.
type sharedInstance struct {
	srv    *Server
	bridge *natsbridge.Bridge
	ring   *fanout.Ring
	url    string
	logs   *lockedBuffer
}

// startShared starts an instance with a ring of size frames on the NATS
// server at natsURL. hook, when not nil, becomes the server's test hook
// before anything runs.
func startShared(t *testing.T, natsURL string, size int, hook func(string)) *sharedInstance {
	t.Helper()
	in := &sharedInstance{logs: &lockedBuffer{}}
	in.ring = fanout.New(fanout.Options{Size: size, Permanent: []string{DefaultTopic}})
	t.Cleanup(func() { _ = in.ring.Close() })
	log := slog.New(slog.NewTextHandler(in.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	in.bridge, err = natsbridge.New(natsbridge.Config{URLs: natsURL, Stream: "SEAM", Subject: "seam.events"},
		func(d natsbridge.Delivery) { in.srv.Deliver(d) }, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.WriteBudget = 0
	in.srv, err = New(&cfg, Deps{Ring: in.ring, Bridge: in.bridge, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	in.srv.testHook = hook
	if err := in.bridge.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- in.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in.srv.Drain()
		_ = in.bridge.Close(ctx)
		_ = in.ring.Close()
		_ = in.srv.Shutdown(ctx)
		_ = <-served
		if t.Failed() {
			t.Logf("log:\n%s", in.logs.String())
		}
	})
	in.url = "http://" + ln.Addr().String()
	return in
}

// publish stores count events on the stream, on topics x and y in turn, and
// waits until the instance consumed them. Event i is {"n":i}.
func (in *sharedInstance) publish(t *testing.T, from, count int) {
	t.Helper()
	var last uint64
	for i := from; i < from+count; i++ {
		topic := "x"
		if i%2 == 1 {
			topic = "y"
		}
		ack, err := in.bridge.Publish(context.Background(), natsbridge.Message{Topic: topic, Data: fmt.Appendf(nil, `{"n":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Seq
	}
	testutil.Poll(t, 15*time.Second, func() error {
		if _, got := in.srv.consumed(in.srv.epoch.Load()); got < last {
			return fmt.Errorf("consumed up to %d, want %d", got, last)
		}
		return nil
	})
}

// listen opens GET path with Last-Event-ID lastID and reads its events until
// it has want of them, which it returns.
func (in *sharedInstance) listen(t *testing.T, path, lastID string, want int) []sseclient.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", lastID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := sseclient.NewReader(bufio.NewReader(resp.Body))
	var got []sseclient.Message
	for len(got) < want {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if !m.Comment {
			got = append(got, m)
		}
	}
	return got
}

// TestSeamFillsWhatTheRingLapped: a listener resumes from an event older than
// the ring (16 events); while its replay from the stream runs, three times
// the ring's worth of events are consumed, so the ring laps the listener's
// subscriber before its stream reads it. The hole is filled from the stream:
// the listener gets every event after its id once, in order, with no gap; on
// every topic, and on one topic.
func TestSeamFillsWhatTheRingLapped(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/events", "/events?topic=x"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			ns := natstest.RunServer(t)
			var in *sharedInstance
			var armed atomic.Bool
			in = startShared(t, ns.URL(), 16, func(where string) {
				if where == "replay opened" && armed.CompareAndSwap(true, false) {
					in.publish(t, 40, 48)
				}
			})
			in.publish(t, 0, 40) // sequences 1..40
			armed.Store(true)
			id := string(in.srv.epoch.Load().space.appendID(nil, 5))
			want, next := 88-5, uint64(6)
			if strings.Contains(path, "topic=x") {
				want, next = 41, 7 // x: sequences 1, 3, 5, ...: 7, 9, ... 87
			}
			got := in.listen(t, path, id, want)
			for i, m := range got {
				seq, _ := strconv.ParseUint(m.ID[strings.LastIndexByte(m.ID, '-')+1:], 10, 64)
				n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(m.Data, `{"n":`), "}"))
				if m.Type != "message" || seq != next || uint64(n) != seq-1 {
					t.Fatalf("event %d: %s %s %s, want sequence %d\n%v", i, m.Type, m.ID, m.Data, next, got)
				}
				next++
				if path != "/events" {
					next++
				}
			}
			if armed.Load() {
				t.Fatal("the replay never opened: the test did not lap the subscriber")
			}
			if !strings.Contains(in.logs.String(), "hole=0") {
				t.Fatalf("the subscriber was not lapped (no hole filled):\n%s", in.logs.String())
			}
		})
	}
}

package app_test

// Scale-out when NATS fails: a server stopped and restarted under load, an
// instance started while NATS is down or unresponsive, a stream with
// conflicting settings, an instance shutting down.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// checkOutage waits until every instance shows that NATS is gone: /health
// "degraded" with a reason naming NATS, /health/ready 503 with a reason, a
// POST answered 503 with Retry-After and a JSON error; and until every
// listener, still connected, got two more heartbeats.
func checkOutage(t *testing.T, instances []*instance, ls []*listener) {
	t.Helper()
	for _, in := range instances {
		poll(t, func() error {
			if h := in.health(t); h.Status != "degraded" || !strings.Contains(h.Reason, "nats") {
				return fmt.Errorf("/health of %s: %+v, want degraded with a reason", in.name, h)
			}
			return nil
		})
		a, err := in.do(http.MethodGet, "/health/ready", "", nil)
		var probe struct{ Status, Reason string }
		if err != nil || a.status != http.StatusServiceUnavailable || json.Unmarshal([]byte(a.body), &probe) != nil || probe.Reason == "" {
			t.Fatalf("/health/ready of %s during the outage: %d %s %v, want 503 with a reason", in.name, a.status, a.body, err)
		}
		a = in.post(t, event("outage", 0), nil)
		if a.status != http.StatusServiceUnavailable {
			t.Fatalf("POST to %s during the outage: %d %s, want 503", in.name, a.status, a.body)
		}
		if err := checkUnavailable(a); err != nil {
			t.Fatalf("POST to %s during the outage: %v", in.name, err)
		}
	}
	for _, l := range ls {
		before := l.heartbeats()
		poll(t, func() error {
			select {
			case <-l.done:
				return fmt.Errorf("stream on %s ended during the outage: %w", l.name, l.err)
			default:
			}
			if n := l.heartbeats(); n < before+2 {
				return fmt.Errorf("listener on %s: %d heartbeats during the outage, want 2", l.name, n-before)
			}
			return nil
		})
	}
}

// waitHealthy waits until every instance's /health says "ok".
func waitHealthy(t *testing.T, instances []*instance) {
	t.Helper()
	for _, in := range instances {
		poll(t, func() error {
			if h := in.health(t); h.Status != "ok" {
				return fmt.Errorf("/health of %s: %+v", in.name, h)
			}
			return nil
		})
	}
}

// TestNATSRestartWithFileStorage: NATS stops while producers post on both
// instances and starts again. Meanwhile POSTs are refused (503, Retry-After,
// JSON error), /health says degraded, and listeners stay connected with
// heartbeats. After it, every event that was accepted reaches every
// listener, once, with consecutive ids: nothing lost, no gap.
func TestNATSRestartWithFileStorage(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	in := startInstances(t, 2, ns.URL(), "-nats-storage", "file", "-heartbeat", "200ms")
	ls := listenAll(t, in)
	ps := startProducers(in, 2, -1)
	ps.waitAccepted(t, 40)

	ns.Shutdown()
	checkOutage(t, in, ls)
	ns.Restart(t)
	waitHealthy(t, in)
	ps.waitAccepted(t, 40)
	ps.halt(t)

	got := make([][]sseclient.Message, len(ls))
	for i, l := range ls {
		got[i] = l.waitProducers(t, ps.all)
		checkConsecutive(t, "listener on "+l.name, got[i], 1)
	}
	sameOrder(t, ls, got)
}

// TestNATSRestartWithMemoryStorage: a stream kept in memory is lost when NATS
// restarts. The instances create it again; each listener gets exactly one
// gap event (with no id) and goes on with the new stream's events; ids of
// the old stream are foreign then: resuming with one gives a gap of unknown
// size, then the new stream's events from its start, then the live ones.
func TestNATSRestartWithMemoryStorage(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	in := startInstances(t, 2, ns.URL(), "-heartbeat", "200ms")
	ls := listenAll(t, in)
	before := events("before", 0, 10)
	for i, e := range before {
		in[i%2].mustPost(t, e)
	}
	var oldID string
	for _, l := range ls {
		oldID = l.waitData(t, before)[len(before)-1].ID
	}

	ns.Shutdown()
	checkOutage(t, in, ls)
	ns.Restart(t)
	// Post on each instance until it accepts (it rejoined), then more.
	var after []string
	for _, inst := range in {
		poll(t, func() error {
			body := event("after."+inst.name, len(after))
			if a := inst.post(t, body, nil); a.status != http.StatusOK {
				return fmt.Errorf("POST to %s after the restart: %d %s", inst.name, a.status, a.body)
			}
			after = append(after, body)
			return nil
		})
	}
	for i := range 5 {
		body := event("after", i)
		in[i%2].mustPost(t, body)
		after = append(after, body)
	}

	for _, l := range ls {
		got := l.waitCount(t, len(before)+1+len(after))
		checkData(t, "listener on "+l.name, got[:len(before)], before)
		if g := got[len(before)]; g.Type != "gap" || g.Data != `{"missed":null}` {
			t.Fatalf("listener on %s: after the old stream's events, %s %s, want one gap of unknown size\n got: %s",
				l.name, g.Type, g.Data, summary(got))
		}
		rest := got[len(before)+1:]
		checkData(t, "listener on "+l.name+" after the gap", rest, after)
		checkConsecutive(t, "listener on "+l.name+" after the gap", rest, 1)
		oldSpace, _ := streamID(t, oldID)
		if newSpace, _ := streamID(t, rest[0].ID); newSpace == oldSpace {
			t.Fatalf("the new stream's ids %s are in the old stream's space %s", rest[0].ID, oldID)
		}
	}

	for _, l := range ls {
		if raw := l.rawText(); !strings.Contains(raw, "\n\nevent: gap\ndata: {\"missed\":null}\n\n") {
			t.Fatalf("listener on %s: the gap event is not a frame of its own without an id:\n%s", l.name, raw)
		}
	}
	for _, inst := range in {
		resumed := inst.listen(t, oldID)
		live := event("live."+inst.name, 0)
		inst.mustPost(t, live)
		after = append(after, live)
		got := resumed.waitCount(t, 1+len(after))
		if got[0].Type != "gap" || got[0].Data != `{"missed":null}` {
			t.Fatalf("resumed on %s with an id of the lost stream: %s", inst.name, summary(got))
		}
		checkData(t, "resumed on "+inst.name, got[1:], after)
		checkConsecutive(t, "resumed on "+inst.name, got[1:], 1)
	}
}

// TestNATSInstanceStartedWhileNATSIsDown: an instance whose NATS server is
// down answers HTTP at once (it does not wait for NATS), says so on /health
// (degraded, not ready), refuses POSTs with 503, and joins when NATS is back:
// POSTs then succeed and events flow.
func TestNATSInstanceStartedWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	ns.Shutdown() // its URL now leads nowhere, until it restarts

	begin := time.Now()
	a := startInstance(t, "a", ns.URL(), "-heartbeat", "200ms")
	if took := time.Since(begin); took > time.Second {
		t.Errorf("start-up with NATS down took %v: HTTP was not answered at once", took)
	}
	t.Logf("serving %v after Run was called, with NATS down", time.Since(begin).Round(time.Millisecond))
	l := a.listen(t, "")
	checkOutage(t, []*instance{a}, []*listener{l})

	ns.Restart(t)
	var accepted []string
	poll(t, func() error {
		body := event("x", len(accepted))
		if r := a.post(t, body, nil); r.status != http.StatusOK {
			return fmt.Errorf("POST after NATS came back: %d %s", r.status, r.body)
		}
		accepted = append(accepted, body)
		return nil
	})
	for i := range 5 {
		body := event("y", i)
		a.mustPost(t, body)
		accepted = append(accepted, body)
	}
	l.waitData(t, accepted)
	if h := a.health(t); h.Status != "ok" {
		t.Errorf("/health after NATS came back: %+v", h)
	}
}

// TestNATSStartUpNeverHangs: NATS URLs that accept connections and never
// answer (three of them, as a cluster's list) hold neither start-up nor
// shutdown: the instance comes up degraded within about its 5 s start
// timeout (plus the first connection attempt, 2 s per server), and stops
// within the shutdown timeout.
func TestNATSStartUpNeverHangs(t *testing.T) {
	t.Parallel()
	urls := natstest.Silent(t) + "," + natstest.Silent(t) + "," + natstest.Silent(t)
	begin := time.Now()
	a := startInstance(t, "a", urls)
	if took := time.Since(begin); took > 9*time.Second {
		t.Errorf("start-up against silent servers took %v", took)
	}
	// While the client tries the servers, /health and POSTs answer at once
	// (within a probe's usual 1 s timeout): nothing waits for the client.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		asked := time.Now()
		if h := a.health(t); h.Status != "degraded" || !strings.Contains(h.Reason, "nats") {
			t.Fatalf("/health: %+v, want degraded with a reason", h)
		}
		if took := time.Since(asked); took > time.Second {
			t.Fatalf("/health took %v", took)
		}
		asked = time.Now()
		if r := a.post(t, event("x", 0), nil); r.status != http.StatusServiceUnavailable {
			t.Fatalf("POST: %d %s, want 503", r.status, r.body)
		} else if err := checkUnavailable(r); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(asked); took > time.Second {
			t.Fatalf("POST took %v to be refused", took)
		}
	}
	begin = time.Now()
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("shutdown took %v, more than -shutdown-timeout", took)
	}
}

// TestNATSConflictingStreamRefusesToStart: an existing stream whose settings
// conflict with the instance's stops start-up at once with a one-line error
// naming the setting.
func TestNATSConflictingStreamRefusesToStart(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	first := startInstance(t, "first", ns.URL(), "-nats-storage", "file")
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"storage", []string{"-nats-storage", "memory"}, "storage file, configured memory"},
		{"replicas", []string{"-nats-storage", "file", "-nats-replicas", "3"}, "replicas 1, configured 3"},
		{"subjects", []string{"-nats-storage", "file", "-nats-subject", "other.events"}, "subjects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			begin := time.Now()
			err := runRecovered(ctx, natsArgs(ns.URL(), tc.args...))
			if err == nil {
				t.Fatal("Run started against a conflicting stream")
			}
			if took := time.Since(begin); took > 10*time.Second {
				t.Errorf("Run took %v to refuse", took)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %q", msg, tc.want)
			}
		})
	}
}

// runRecovered runs app.Run and turns a panic into an error, so that a
// start-up that crashes fails its test alone.
func runRecovered(ctx context.Context, args []string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("Run panicked: %v", v)
		}
	}()
	return app.Run(ctx, args, noEnv, io.Discard, io.Discard)
}

// retryEnd matches the end of a stream ended by the service: a complete
// frame, then a retry hint.
var retryEnd = regexp.MustCompile(`\n\nretry: [0-9]+\n\n$`)

// TestNATSShutdownEndsStreamsCleanly: an instance stopped while events flow
// through the stream delivers what it consumed, with no gap, and ends its
// streams on a retry hint; the other instance goes on.
func TestNATSShutdownEndsStreamsCleanly(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	in := startInstances(t, 2, ns.URL())
	ls := listenAll(t, in)
	ps := startProducers(in[1:], 2, -1)
	ls[0].waitCount(t, 30)

	begin := time.Now()
	if err := in[0].stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Errorf("shutdown took %v, more than -shutdown-timeout", took)
	}
	raw, err := ls[0].waitEnd(t)
	if !errors.Is(err, io.EOF) || !retryEnd.MatchString(raw) {
		t.Fatalf("stream ended with %v, on %q", err, raw[max(0, len(raw)-200):])
	}
	ps.waitAccepted(t, 20)
	ps.halt(t)

	all := ls[1].waitProducers(t, ps.all)
	checkConsecutive(t, "listener on b", all, 1)
	stopped := ls[0].messages()
	checkConsecutive(t, "listener on a", stopped, 1)
	if len(stopped) > len(all) {
		t.Fatalf("listener on a got %d events, b %d", len(stopped), len(all))
	}
	sameOrder(t, ls, [][]sseclient.Message{stopped, all[:len(stopped)]})
}

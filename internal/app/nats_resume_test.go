package app_test

// Resume on a shared stream while events flow: the seam between what a
// resuming listener gets from the stream and the live events of its
// instance, and ids the stream never gave out.

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
)

// topicOf is the topic the flowing producers post producer p's events on.
func topicOf(p string) string {
	if strings.HasSuffix(p, ".0") {
		return "flow.x"
	}
	return "flow.y"
}

// startFlow starts two producers on each instance, posting continuously, each
// at most one event per pace, on topics flow.x (producers *.0) and flow.y
// (*.1).
func startFlow(instances []*instance, pace time.Duration) *producers {
	ps := &producers{stop: make(chan struct{})}
	for _, in := range instances {
		for j := range 2 {
			name := fmt.Sprintf("%s.%d", in.name, j)
			p := &producer{in: in, name: name, pace: pace, path: "/api/events?topic=" + topicOf(name)}
			ps.all = append(ps.all, p)
			ps.wg.Go(func() { p.run(-1, ps.stop) })
		}
	}
	return ps
}

// producerOf returns the producer named in an event's payload.
func producerOf(data string) string {
	_, rest, _ := strings.Cut(data, `"p":"`)
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

// TestNATSResumeWhileEventsFlow: while producers post continuously on both
// instances, listeners resume again and again on an instance with a small
// buffer (64 events, which the events turn over about every 130 ms), from ids
// at every distance from the newest event: just given out, within the
// buffer, past it (replayed from the stream while the live events keep
// coming), and ahead of that instance. Each one must receive
// every later event of its topics exactly once, in the stream's order, with
// no gap: its events are those a reference listener got, from the id on.
func TestNATSResumeWhileEventsFlow(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	a := startInstance(t, "a", ns.URL())
	// b's listeners write each event at once (no gathering): what is
	// measured is the seam, not how a small buffer copes with bursts on a
	// busy machine.
	b := startInstance(t, "b", ns.URL(), "-buffer", "64", "-write-budget", "0", "-log-level", "debug")
	ref := a.listen(t, "")
	ps := startFlow([]*instance{a, b}, 8*time.Millisecond) // at most 500 events/s in all
	defer ps.halt(t)
	ref.waitCount(t, 400)
	began, before := time.Now(), ps.accepted()

	// Up to 48 back (three quarters of the buffer) the ring continues the
	// id; further back, the listener is served from the stream first.
	distances := []int{0, 1, 3, 10, 47, 48, 49, 63, 64, 65, 100, 399}
	const rounds, attempts = 44, 5
	replayed, lagged, inconclusive := 0, 0, 0
	for round := range rounds {
		back := distances[round%len(distances)]
		done := false
		for range attempts {
			if done = resumeOnce(t, ref, b, round, back); done {
				break
			}
			lagged++
		}
		if !done {
			inconclusive++
		}
		if back > 48 {
			replayed++
		}
	}
	rate := float64(ps.accepted()-before) / time.Since(began).Seconds()
	ps.halt(t)
	t.Logf("%d resumes (%d older than the buffer) while %.0f events/s were posted; %d attempts lagged in the live stream after the seam and were repeated",
		rounds, replayed, rate, lagged)
	if inconclusive > rounds/4 {
		t.Skipf("%d of %d rounds lagged behind the buffer %d times in a row: the machine is too busy to tell", inconclusive, rounds, attempts)
	}
}

// lagGap matches the gap event of a listener that fell behind its buffer in
// the live stream: a count. The joining of the stream and the ring writes
// no such gap in this test (nothing expires from the stream): a gap of
// unknown size, a missing event or a duplicate is the seam's.
var lagGap = regexp.MustCompile(`^\{"missed":[0-9]+\}$`)

// resumeOnce resumes a listener on in from the event back events before the
// newest the reference listener got, on every topic for an even round and on
// the topic of that event for an odd one (named by a pattern one time out of
// two), and checks that it receives exactly
// what the reference got after that event, up to 60 events past the newest
// (well past the seam). It returns false, after checking what came before,
// when the listener fell behind the buffer in the live stream (a busy
// machine): the round tells nothing then.
func resumeOnce(t *testing.T, ref *listener, in *instance, round, back int) bool {
	t.Helper()
	all := ref.messages()
	from := all[len(all)-1-back]
	_, fromSeq := streamID(t, from.ID)
	path, topic := "/events", ""
	if round%2 == 1 {
		topic = topicOf(producerOf(from.Data))
		path += "?topic=" + topic
		if round%4 == 3 { // the same topic, named by a pattern
			path = "/events?topic=*." + strings.TrimPrefix(topic, "flow.")
		}
	}
	l := in.listenOn(t, path, from.ID)
	defer l.close()
	_, newest := streamID(t, all[len(all)-1].ID)
	end := newest + 60
	var want []sseclient.Message
	poll(t, func() error {
		want = want[:0]
		for _, m := range ref.messages() {
			_, seq := streamID(t, m.ID)
			if seq > fromSeq && seq <= end && (topic == "" || topicOf(producerOf(m.Data)) == topic) {
				want = append(want, m)
			}
			if seq >= end {
				return nil
			}
		}
		return fmt.Errorf("the reference listener is not at %d yet", end)
	})
	got := l.waitCount(t, len(want))
	for i, w := range want {
		g := got[i]
		if g.Type == "gap" && lagGap.MatchString(g.Data) {
			t.Logf("round %d (%d back, on %s): the listener fell behind the buffer in the live stream after %d events: repeated", round, back, path, i)
			return false
		}
		if g != w {
			t.Fatalf("round %d, resumed on %s from %s (%d back): event %d is %s %s %s, want %s %s\n got: %s",
				round, path, from.ID, back, i, g.Type, g.ID, g.Data, w.ID, w.Data, summary(got))
		}
	}
	return true
}

// TestNATSResumeAheadOfTheStream: an id the stream never gave out, ahead of
// its last sequence (one after it, a few, many, or the largest), gets
// {"missed":null} and then the live events: nothing is skipped; so does an id
// of this stream's space with a malformed number. On the instance that
// consumed the stream's last event, and on one that did not yet.
func TestNATSResumeAheadOfTheStream(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	in := startInstances(t, 2, ns.URL())
	live := in[0].listen(t, "")
	all := events("x", 0, 10)
	for _, e := range all {
		in[0].mustPost(t, e)
	}
	seen := live.waitData(t, all)
	space, last := streamID(t, seen[len(seen)-1].ID)
	// Ids relative to the stream's last sequence, which grows by three
	// each round.
	ids := []func() string{
		func() string { return fmt.Sprintf("%s-%d", space, last+1) },
		func() string { return fmt.Sprintf("%s-%d", space, last+3) },
		func() string { return space + "-999999" },
		func() string { return space + "-281474976710655" }, // the largest sequence an id may carry
		func() string { return space + "-x1" },
	}
	round := 0
	for _, inst := range in {
		for _, idOf := range ids {
			id := idOf()
			l := inst.listen(t, id)
			// The gap comes first, once the stream said it never gave the
			// id out (an id stored meanwhile would be one it gave out).
			if got := l.waitCount(t, 1); got[0].Type != "gap" || got[0].Data != `{"missed":null}` {
				t.Fatalf("resumed on %s with %s: first %s %s, want a gap of unknown size\n got: %s", inst.name, id, got[0].Type, got[0].Data, summary(got))
			}
			// Three events: with last+3, the first two were the ones
			// skipped.
			bodies := events(fmt.Sprint("after", round), 0, 3)
			round++
			for _, b := range bodies {
				inst.mustPost(t, b)
			}
			got := l.waitCount(t, 1+len(bodies))
			checkData(t, "resumed on "+inst.name+" with "+id, got[1:], bodies)
			last += uint64(len(bodies))
			l.close()
		}
	}
}

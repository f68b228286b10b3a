package app_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/natstest"
	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/sseclient"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// kindEvent is event i, of kind "even" or "odd".
func kindEvent(i int) string {
	kind := "odd"
	if i%2 == 0 {
		kind = "even"
	}
	return fmt.Sprintf(`{"kind":%q,"i":%d}`, kind, i)
}

// TestNATSFiltersAndSampling: with two instances sharing a stream, filtered
// and sampled listeners receive the same events on both, with the same ids:
// exactly the events that match, and of a sample the events whose id number
// the fraction keeps. A filtered listener that resumes from an id older than
// its instance's buffer gets the matching events from the stream, then those
// of the buffer, without a gap; so does a sampled one.
func TestNATSFiltersAndSampling(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	a, b := startInstance(t, "a", ns.URL()), startInstance(t, "b", ns.URL())
	// c holds the last 16 events: listeners that resume there from further
	// back get the rest from the stream. (A live listener there could be
	// lapped by a burst from the stream: the test's listeners are on a
	// and b.)
	c := startInstance(t, "c", ns.URL(), "-buffer", "16")
	const where, sample = "/events?where=kind:even", "/events?sample=0.5"
	all := a.listen(t, "")
	whereA, whereB := a.listenOn(t, where, ""), b.listenOn(t, where, "")
	sampleA, sampleB := a.listenOn(t, sample, ""), b.listenOn(t, sample, "")
	bothB := b.listenOn(t, where+"&sample=0.5", "")

	const n = 60
	for i := range n {
		in := a
		if i%3 == 0 {
			in = b
		}
		in.mustPost(t, kindEvent(i))
	}
	var ref []sseclient.Message
	poll(t, func() error {
		if ref = all.messages(); len(ref) < n {
			return fmt.Errorf("the reference listener has %d events of %d", len(ref), n)
		}
		return nil
	})
	// keep returns the reference events after the from-th that match.
	keep := func(from int, even bool, fraction float64) []sseclient.Message {
		var out []sseclient.Message
		for i, m := range ref[:n] {
			_, seq := streamID(t, m.ID)
			if i > from && (!even || strings.Contains(m.Data, `"kind":"even"`)) && filter.Sampled(seq, fraction) {
				out = append(out, m)
			}
		}
		return out
	}
	evens, sampled, both := keep(-1, true, 1), keep(-1, false, 0.5), keep(-1, true, 0.5)
	if len(sampled) == 0 || len(sampled) == n {
		t.Fatalf("a 0.5 sample of %d events keeps %d: pick other events", n, len(sampled))
	}
	for _, c := range []struct {
		l    *listener
		want []sseclient.Message
	}{{whereA, evens}, {whereB, evens}, {sampleA, sampled}, {sampleB, sampled}, {bothB, both}} {
		checkMessages(t, c.l, c.want)
	}

	// From the 10th on: c has the last 16, the rest comes from the stream,
	// filtered the same way.
	from := ref[9].ID
	resumedWhere := c.listenOn(t, where, from)
	resumedSample := c.listenOn(t, sample, from)
	checkMessages(t, resumedWhere, keep(9, true, 1))
	checkMessages(t, resumedSample, keep(9, false, 0.5))
}

// checkMessages waits until l received as many events as want, then checks
// that they are want: same ids, same payloads, no gap.
func checkMessages(t *testing.T, l *listener, want []sseclient.Message) {
	t.Helper()
	poll(t, func() error {
		if got := l.messages(); len(got) < len(want) {
			return fmt.Errorf("listener on %s: %d events, want %d\n got: %s\nwant: %s", l.name, len(got), len(want), summary(got), summary(want))
		}
		return nil
	})
	got := l.messages()
	if len(got) != len(want) {
		t.Fatalf("listener on %s: %d events, want %d\n got: %s\nwant: %s", l.name, len(got), len(want), summary(got), summary(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listener on %s: event %d is %s %s %s, want %s %s\n got: %s\nwant: %s",
				l.name, i, got[i].Type, got[i].ID, got[i].Data, want[i].ID, want[i].Data, summary(got), summary(want))
		}
	}
}

package server

import (
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// TestSampleByEventNumber: a sample keeps the events whose id number the
// fraction keeps, whatever this process's key base of the id space: two
// instances of one stream (which may have seen different numbers of
// streams) keep the same events.
func TestSampleByEventNumber(t *testing.T) {
	f, err := filter.Parse(nil, "0.5", filter.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := FilterMatcher([]fanout.Filter{f})
	kept := 0
	for n := uint64(1); n <= 200; n++ {
		want := filter.Sampled(n, 0.5)
		for ordinal := range uint64(4) {
			key := newStreamSpace(1, ordinal).key(n)
			if got := len(m.Match([]byte(`{}`), key, nil)) == 1; got != want {
				t.Fatalf("event %d, key %#x (stream %d of the process): kept %v, want %v", n, key, ordinal, got, want)
			}
		}
		if want {
			kept++
		}
	}
	if kept == 0 || kept == 200 {
		t.Fatalf("a 0.5 sample kept %d of 200 events", kept)
	}
}

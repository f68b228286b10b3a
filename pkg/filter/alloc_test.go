//go:build !race

// Under the race detector, sync.Pool drops items at random, so the
// allocation counts of Set.Match, which takes its scratch space from a pool,
// mean nothing there.

package filter_test

import (
	"fmt"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// The allocation claims of the documentation, proven: Set.Match and
// Filter.Matches do not allocate once warm when dst has room, whatever
// path the matching takes (escaped keys and values, many matching filters
// put in order through the bitmap, a few sorted); TopLevelString does not
// allocate for a value without escapes.

func TestMatchDoesNotAllocate(t *testing.T) {
	escaped := []byte(`{"\u0074ype":"err\u006fr","media":{"id":"urn:rts:video:1"},"code":404,"x":[1,{"y":"}"}]}`)
	var many []*filter.Filter
	for i := range 2000 {
		switch i % 4 {
		case 0:
			many = append(many, mustParse(t, fmt.Sprintf("0.%03d", i%1000+1)))
		case 1:
			many = append(many, mustParse(t, "", "type:error", fmt.Sprintf("code:%d", 400+i%8)))
		case 2:
			many = append(many, mustParse(t, "", fmt.Sprintf("media.id:urn:rts:video:%d", i%3)))
		default:
			many = append(many, mustParse(t, "0.5", "type:error", "type:warning", "media.id:urn:rts:video:1"))
		}
	}
	for _, tc := range []struct {
		name    string
		filters []*filter.Filter
		event   []byte
	}{
		{"one path", []*filter.Filter{mustParse(t, "", "type:error")}, []byte(player)},
		{"escapes", []*filter.Filter{mustParse(t, "", "type:error", "media.id:urn:rts:video:1")}, escaped},
		{"a few sorted", []*filter.Filter{mustParse(t, "", "code:404"), mustParse(t, "0.5"), mustParse(t, "", "type:error")}, []byte(player)},
		{"many through the bitmap", many, []byte(player)},
		{"many, escapes", many, escaped},
		{"invalid event", many, []byte(`{"type":"error","media":{"id":`)},
	} {
		s := filter.NewSet(tc.filters)
		dst := make([]int, 0, len(tc.filters))
		id := uint64(0)
		allocs := testing.AllocsPerRun(200, func() {
			id++
			dst = s.Match(tc.event, id, dst[:0])
		})
		if allocs != 0 {
			t.Errorf("%s: Set.Match allocates %v times per call", tc.name, allocs)
		}
		if tc.name == "many through the bitmap" && len(dst) < 100 {
			t.Errorf("%s: %d matches: the case does not reach the bitmap", tc.name, len(dst))
		}
	}
	f := mustParse(t, "0.5", "type:error", "media.id:urn:rts:video:1")
	id := uint64(0)
	if allocs := testing.AllocsPerRun(200, func() { id++; f.Matches(escaped, id) }); allocs != 0 {
		t.Errorf("Filter.Matches allocates %v times per call", allocs)
	}
}

func TestTopLevelStringDoesNotAllocate(t *testing.T) {
	event := []byte(player)
	var got string
	allocs := testing.AllocsPerRun(200, func() { got, _ = filter.TopLevelString(event, "user_ip") })
	if allocs != 0 || got != "1.2.3.4" {
		t.Errorf("TopLevelString = %q, %v allocations per call, want 1.2.3.4 and none", got, allocs)
	}
	escapedKey := []byte(`{"\u0074opic":"player","x":{"topic":"no"}}`)
	allocs = testing.AllocsPerRun(200, func() { got, _ = filter.TopLevelString(escapedKey, "topic") })
	if allocs != 0 || got != "player" {
		t.Errorf("TopLevelString with an escaped key = %q, %v allocations per call, want player and none", got, allocs)
	}
}

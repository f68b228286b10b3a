package filter_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// mustParse parses a filter or fails the test.
func mustParse(tb testing.TB, sample string, where ...string) *filter.Filter {
	tb.Helper()
	f, err := filter.Parse(where, sample, filter.Limits{})
	if err != nil {
		tb.Fatalf("Parse(%q, %q): %v", where, sample, err)
	}
	return f
}

// oneByOne returns the indexes of the filters that match the event, each
// evaluated alone.
func oneByOne(filters []*filter.Filter, event []byte, id uint64) []int {
	var want []int
	for i, f := range filters {
		if f != nil && f.Matches(event, id) {
			want = append(want, i)
		}
	}
	return want
}

func TestSetMatch(t *testing.T) {
	t.Parallel()
	errorF := mustParse(t, "", "type:error")
	filters := []*filter.Filter{
		0:  mustParse(t, "", "type:warning"),
		1:  errorF,
		2:  nil,
		3:  mustParse(t, "", "media.id:urn:rts:video:1", "type:error"),
		4:  errorF, // the same filter twice
		5:  mustParse(t, "", "type:error"),
		6:  mustParse(t, "", "code:404", "type:error", "type:warning"),
		7:  mustParse(t, "", "code:500", "type:error"),
		8:  mustParse(t, "1"), // nil: keeps everything alone, nothing in a Set
		9:  mustParse(t, "0.5"),
		10: mustParse(t, "0.5", "type:error"),
		11: mustParse(t, "0.000001"),
		12: mustParse(t, "0.999999"),
		13: mustParse(t, "", "media.id:urn:rts:video:2"),
		14: mustParse(t, "", "user_ip:1.2.3.4", "ok:false", "media.live:false", "code:404"),
	}
	s := filter.NewSet(filters)
	if s.Len() != len(filters) {
		t.Fatalf("Len() = %d, want %d", s.Len(), len(filters))
	}
	always := []int{1, 3, 4, 5, 6, 14}
	sampled := 0
	for id := range uint64(200) {
		got := s.Match([]byte(player), id, nil)
		want := slices.Clone(always)
		for _, i := range []int{9, 10, 11, 12} {
			if filter.Sampled(id, filters[i].Fraction()) {
				want = append(want, i)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Match(player, %d) = %v, want %v", id, got, want)
		}
		if !slices.Equal(got, oneByOne(filters, []byte(player), id)) {
			t.Fatalf("Match(player, %d) = %v, one by one %v", id, got, oneByOne(filters, []byte(player), id))
		}
		if slices.Contains(got, 9) {
			sampled++
		}
	}
	if sampled < 60 || sampled > 140 {
		t.Errorf("sample=0.5 kept %d of 200 ids", sampled)
	}
}

// TestSetMatchAppends checks that Match appends to dst and keeps what is
// there.
func TestSetMatchAppends(t *testing.T) {
	t.Parallel()
	s := filter.NewSet([]*filter.Filter{mustParse(t, "", "type:error"), mustParse(t, "", "code:404")})
	dst := []int{42}
	if got := s.Match([]byte(player), 1, dst); !slices.Equal(got, []int{42, 0, 1}) {
		t.Errorf("Match(player, 1, [42]) = %v, want [42 0 1]", got)
	}
	var none *filter.Set
	if got := none.Match([]byte(player), 1, dst); !slices.Equal(got, dst) || none.Len() != 0 {
		t.Errorf("nil Set: Match = %v, Len = %d", got, none.Len())
	}
	empty := filter.NewSet(nil)
	if got := empty.Match([]byte(player), 1, nil); got != nil || empty.Len() != 0 {
		t.Errorf("empty Set: Match = %v, Len = %d", got, empty.Len())
	}
	nils := filter.NewSet(make([]*filter.Filter, 3))
	if got := nils.Match([]byte(player), 1, nil); got != nil || nils.Len() != 3 {
		t.Errorf("Set of nils: Match = %v, Len = %d", got, nils.Len())
	}
}

// TestSetManyFilters checks large sets, where the indexes of many matching
// filters are put in order through a bitmap, and where few are sorted.
func TestSetManyFilters(t *testing.T) {
	t.Parallel()
	const n = 3000
	filters := make([]*filter.Filter, n)
	for i := range filters {
		switch i % 5 {
		case 0:
			filters[i] = mustParse(t, "", fmt.Sprintf("media.id:urn:rts:video:%d", i%7))
		case 1:
			filters[i] = mustParse(t, fmt.Sprintf("0.%03d", i%1000+1))
		case 2:
			filters[i] = mustParse(t, "", "type:error", fmt.Sprintf("code:%d", 400+i%10))
		case 3:
			filters[i] = mustParse(t, fmt.Sprintf("0.%d", i%9+1), "type:error", "type:warning")
		default:
			if i%10 != 4 {
				filters[i] = mustParse(t, "", fmt.Sprintf("x:%d", i)) // matches nothing
			}
		}
	}
	s := filter.NewSet(filters)
	for _, event := range []string{player, `{"type":"info"}`, `{"media":{"id":"urn:rts:video:3"}}`, `{}`} {
		for id := range uint64(20) {
			got := s.Match([]byte(event), id, nil)
			if want := oneByOne(filters, []byte(event), id); !slices.Equal(got, want) {
				t.Fatalf("Match(%s, %d): %d indexes, one by one %d\n got %v\nwant %v", event, id, len(got), len(want), got, want)
			}
		}
	}
}

// TestSetConcurrent matches from many goroutines at once (run with -race).
func TestSetConcurrent(t *testing.T) {
	t.Parallel()
	filters := make([]*filter.Filter, 0, 400)
	for i := range 200 {
		filters = append(filters,
			mustParse(t, "", fmt.Sprintf("media.id:urn:rts:video:%d", i%20), "type:error"),
			mustParse(t, fmt.Sprintf("0.%02d", i%99+1)))
	}
	s := filter.NewSet(filters)
	events := [][]byte{
		[]byte(player),
		[]byte(`{"type":"error","media":{"id":"urn:rts:video:7"}}`),
		[]byte(`{"type":"error","media":{"id":"urn:rts:video:7"},"media":{"id":"urn:rts:video:8"}}`),
	}
	want := make([][][]int, len(events))
	for e, ev := range events {
		for id := range uint64(50) {
			want[e] = append(want[e], oneByOne(filters, ev, id))
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var dst []int
			for k := range 300 {
				e, id := (g+k)%len(events), uint64(k%50)
				dst = s.Match(events[e], id, dst[:0])
				if !slices.Equal(dst, want[e][id]) {
					t.Errorf("goroutine %d: Match(%s, %d) = %v, want %v", g, events[e], id, dst, want[e][id])
					return
				}
			}
		})
	}
	wg.Wait()
}

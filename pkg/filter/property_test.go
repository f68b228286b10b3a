package filter_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// The property test: for random events and random filters, Set.Match
// agrees with a reference that decodes the event with encoding/json and
// evaluates each filter on its own, as the package documentation says.

// The vocabularies: keys (some needing escapes in a path, all written with
// random JSON escapes in events), string and literal values.
var (
	propKeys    = []string{"a", "b", "c", "a.b", "a:b", `a\b`, "é", "t y", `q"`}
	propStrings = []string{"x", "y", "1", "-0", "true", "null", "", "é", `a"b`, "a\\b", "a/b", "\n"}
	propLits    = []string{"1", "-0", "0", "1e3", "1.50", "2", "true", "false", "null"}
)

// refFilter is a filter as the reference sees it.
type refFilter struct {
	paths    []refPath
	fraction float64
}

type refPath struct {
	keys   []string
	values []string // any of them
}

// escapeKey writes a key as a where path writes it.
func escapeKey(k string) string {
	r := strings.NewReplacer(`\`, `\\`, ".", `\.`, ":", `\:`)
	return r.Replace(k)
}

// randFilter returns a random filter and its where terms and sample.
func randFilter(r *rand.Rand) (rf refFilter, where []string, sample string) {
	rf.fraction = 1
	for range r.IntN(3) {
		var p refPath
		for range 1 + r.IntN(3)/2 + r.IntN(4)/3 { // 1 key most often, up to 3
			p.keys = append(p.keys, propKeys[r.IntN(len(propKeys))])
		}
		escaped := make([]string, len(p.keys))
		for i, k := range p.keys {
			escaped[i] = escapeKey(k)
		}
		for range 1 + r.IntN(4) {
			v := propStrings[r.IntN(len(propStrings))]
			if r.IntN(2) == 0 {
				v = propLits[r.IntN(len(propLits))]
			}
			p.values = append(p.values, v)
			where = append(where, strings.Join(escaped, ".")+":"+v)
		}
		// Terms on the same path are alternatives: one group.
		if i := slices.IndexFunc(rf.paths, func(q refPath) bool { return slices.Equal(q.keys, p.keys) }); i >= 0 {
			rf.paths[i].values = append(rf.paths[i].values, p.values...)
		} else {
			rf.paths = append(rf.paths, p)
		}
	}
	if r.IntN(3) == 0 || len(where) == 0 {
		rf.fraction = float64(1+r.IntN(100)) / 100
		sample = strconv.FormatFloat(rf.fraction, 'g', -1, 64)
	}
	return rf, where, sample
}

// randEvent writes a random JSON object: keys from the vocabulary (with
// duplicates), random escapes in keys and strings, random whitespace.
func randEvent(r *rand.Rand, b *bytes.Buffer, depth int) {
	ws := func() {
		if r.IntN(4) == 0 {
			b.WriteString(" \n\t\r"[r.IntN(4):][:1])
		}
	}
	ws()
	b.WriteByte('{')
	for i := range r.IntN(7) {
		if i > 0 {
			ws()
			b.WriteByte(',')
		}
		ws()
		writeString(r, b, propKeys[r.IntN(len(propKeys))])
		ws()
		b.WriteByte(':')
		ws()
		switch k := r.IntN(10); {
		case k < 3 && depth < 3:
			randEvent(r, b, depth+1)
		case k < 4:
			b.WriteByte('[')
			if r.IntN(2) == 0 {
				randEvent(r, b, depth+1)
				b.WriteString(`,"x"`)
			}
			b.WriteByte(']')
		case k < 7:
			writeString(r, b, propStrings[r.IntN(len(propStrings))])
		default:
			b.WriteString(propLits[r.IntN(len(propLits))])
		}
		ws()
	}
	b.WriteByte('}')
	ws()
}

// writeString writes s as a JSON string, escaping some characters that
// need no escape.
func writeString(r *rand.Rand, b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '/' && r.IntN(2) == 0:
			b.WriteString(`\/`)
		case r.IntN(4) == 0:
			fmt.Fprintf(b, `\u%04x`, c) // all of the vocabulary is in the BMP
		default:
			b.WriteRune(c)
		}
	}
	b.WriteByte('"')
}

// refDecode decodes an event as the reference reads it.
func refDecode(event []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(event))
	d.UseNumber() // a json.Number is the literal's text
	var root any
	err := d.Decode(&root)
	return root, err
}

// refMatches evaluates a filter on an event decoded by refDecode.
func refMatches(root any, rf refFilter, id uint64) bool {
	for _, p := range rf.paths {
		text, ok := refLookup(root, p.keys)
		if !ok || !slices.Contains(p.values, text) {
			return false
		}
	}
	return filter.Sampled(id, rf.fraction)
}

// refLookup returns the text of the field at keys, if it is a string or a
// literal.
func refLookup(v any, keys []string) (string, bool) {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "null", true
	}
	return "", false
}

func TestSetMatchAgreesWithReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	matched := 0
	for round := range 100 {
		n := 1 + r.IntN(60)
		refs := make([]refFilter, n)
		filters := make([]*filter.Filter, n)
		for i := range filters {
			var where []string
			var sample string
			refs[i], where, sample = randFilter(r)
			filters[i] = mustParse(t, sample, where...)
			if filters[i] == nil && (len(where) > 0 || refs[i].fraction != 1) {
				t.Fatalf("Parse(%q, %q) = nil", where, sample)
			}
		}
		s := filter.NewSet(filters)
		var b bytes.Buffer
		for range 100 {
			b.Reset()
			randEvent(r, &b, 0)
			event := b.Bytes()
			id := r.Uint64()
			var want []int
			root, err := refDecode(event)
			if err != nil {
				t.Fatalf("reference: %s: %v", event, err)
			}
			for i, rf := range refs {
				if filters[i] != nil && refMatches(root, rf, id) { // a Set reports no nil entry
					want = append(want, i)
				}
			}
			got := s.Match(event, id, nil)
			if !slices.Equal(got, want) {
				for _, i := range want {
					if !slices.Contains(got, i) {
						t.Errorf("round %d: %s (id %d): filter %d (%v) not reported", round, event, id, i, filters[i])
					}
				}
				for _, i := range got {
					if !slices.Contains(want, i) {
						t.Errorf("round %d: %s (id %d): filter %d (%v) reported", round, event, id, i, filters[i])
					}
				}
				t.Fatalf("got %v, want %v", got, want)
			}
			for _, i := range got {
				if len(refs[i].paths) > 0 {
					matched++ // the matches of sample-only filters are not counted
				}
			}
		}
	}
	t.Logf("%d matches by where terms", matched)
	if matched < 500 {
		t.Errorf("only %d matches in all: the generators do not exercise matching", matched)
	}
}

package filter_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

// FuzzParse parses where terms (one a line) and a sample: Parse never
// panics; an error wraps ErrInvalid and names the parameter; a filter's Key
// does not depend on the order or the repetition of its terms, its String
// is one line, its Fraction is in (0, 1], and it can be matched.
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 20000x ./pkg/filter
func FuzzParse(f *testing.F) {
	for _, seed := range [][2]string{
		{"type:error", ""},
		{"media.id:urn:rts:video:1\ntype:error\ntype:warning", "0.01"},
		{`a\.b:1` + "\n" + `a\:b:x:y` + "\n" + `a\\b:` + "\n" + `a\xb:1`, ".5"},
		{"media..id:1", ""},
		{":x\n.a:1\na.:1\nnocolon", "1"},
		{`a\`, "0x1p-2"},
		{"k:a b\nk:x|y\nk:\"q\"\nk:\n", "1e-5"},
		{"", "NaN"},
		{strings.Repeat("a.", 16) + "a:1", "Inf"},
		{strings.Repeat("k:v\n", 17), "2"},
		{"é.ü:☕", "1e999"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, lines, sample string) {
		where := strings.Split(lines, "\n")
		if lines == "" {
			where = nil
		}
		fl, err := filter.Parse(where, sample, filter.Limits{})
		if err != nil {
			msg := err.Error()
			if fl != nil || !errors.Is(err, filter.ErrInvalid) {
				t.Fatalf("Parse(%q, %q) = %v, %v: want no filter and ErrInvalid", where, sample, fl, err)
			}
			if !strings.HasPrefix(msg, `where "`) && !strings.HasPrefix(msg, `sample "`) && !strings.HasPrefix(msg, `too many "where"`) {
				t.Fatalf("Parse(%q, %q) error %q does not name the parameter", where, sample, msg)
			}
			return
		}
		if fl == nil { // no filter: no term, and no sample or sample=1
			if g, err := filter.Parse([]string{"k:v"}, sample, filter.Limits{}); len(where) > 0 || err != nil || g.Fraction() != 1 {
				t.Fatalf("Parse(%q, %q) = nil, nil", where, sample)
			}
			return
		}
		if s := fl.String(); strings.ContainsAny(s, "\r\n") || s == "" {
			t.Fatalf("Parse(%q, %q).String() = %q: empty or several lines", where, sample, s)
		}
		if fr := fl.Fraction(); !(fr > 0 && fr <= 1) {
			t.Fatalf("Parse(%q, %q).Fraction() = %v", where, sample, fr)
		}
		shuffled := slices.Clone(where)
		if len(where) > 0 {
			shuffled = append(shuffled, where[0]) // a duplicate (within the limit, or refused)
		}
		slices.Reverse(shuffled)
		again, err := filter.Parse(shuffled, sample, filter.Limits{})
		switch {
		case err != nil && len(shuffled) <= filter.DefaultLimits.Terms:
			t.Fatalf("Parse(%q, %q) = %v, but the same terms reversed: %v", where, sample, fl, err)
		case err == nil && again.Key() != fl.Key():
			t.Fatalf("Key of %q = %q, of %q = %q", where, fl.Key(), shuffled, again.Key())
		}
		fl.Matches([]byte(`{"type":"error","media":{"id":"urn:rts:video:1"},"a.b":1}`), 1)
	})
}

// FuzzLocate looks up the field at a path (keys separated by dots, no
// escapes) in an event: on any input it does not panic; on valid UTF-8
// JSON, the text found (and whether there is one) is what encoding/json
// decodes there, TopLevelString agrees with it for a top-level string, and
// a filter on that path and text matches the event.
//
//	go test -run '^$' -fuzz '^FuzzLocate$' -fuzztime 20000x ./pkg/filter
func FuzzLocate(f *testing.F) {
	for _, seed := range [][2]string{
		{player, "media.id"},
		{player, "code"},
		{player, "ok"},
		{player, "media"},
		{`{"\u0074ype":"a\"b\\c\/d\u00e9\ud83d\ude00"}`, "type"},
		{`{"a":{"b":1},"a":{"c":2}}`, "a.b"},
		{`{"a":{"b":1},"a":{"c":2}}`, "a.c"},
		{`{"a":{"b":1},"a":1}`, "a.b"},
		{`{"a":[{"b":1}],"b":-0}`, "a.b"},
		{`{"n":1e3,"m":1.50,"z":null,"t":true}`, "n"},
		{` { "x" : { "y" : "z" } } `, "x.y"},
		{`{"s":"\ud800\udc00\ud800x\udc00"}`, "s"},
		{`{"":{"":""}}`, "."},
		{`[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]`, "a"},
		{`{"a":"b`, "a"},
		{`{"a":{"b":"}"`, "a.b"},
		{`{"a" "b"}`, "a"},
		{"{\"a\":\"\xff\"}", "a"},
	} {
		f.Add([]byte(seed[0]), seed[1])
	}
	f.Fuzz(func(t *testing.T, event []byte, path string) {
		keys := strings.Split(path, ".")
		got, ok := filter.LocateText(event, keys...)
		top, topOK := filter.TopLevelString(event, keys[0])
		if !json.Valid(event) || !utf8.Valid(event) {
			return // no panic is all that is checked
		}
		root, err := refDecode(event)
		if err != nil {
			return // valid, but too deep for encoding/json
		}
		want, wantOK := refLookup(root, keys)
		if got != want || ok != wantOK {
			t.Fatalf("LocateText(%s, %q) = %q, %v; encoding/json: %q, %v", event, keys, got, ok, want, wantOK)
		}
		m, _ := root.(map[string]any)
		s, isString := m[keys[0]].(string)
		if top != s || topOK != isString {
			t.Fatalf("TopLevelString(%s, %q) = %q, %v; encoding/json: %q, %v", event, keys[0], top, topOK, s, isString)
		}
		if !ok || slices.Contains(keys, "") {
			return
		}
		escaped := make([]string, len(keys))
		for i, k := range keys {
			escaped[i] = escapeKey(k)
		}
		fl, err := filter.Parse([]string{strings.Join(escaped, ".") + ":" + got}, "", filter.Limits{PathLen: 1 << 20, Segments: 1 << 20, ValueLen: 1 << 20})
		if err != nil {
			t.Fatalf("Parse of path %q and value %q: %v", keys, got, err)
		}
		if !fl.Matches(event, 1) {
			t.Fatalf("%v does not match %s", fl, event)
		}
	})
}

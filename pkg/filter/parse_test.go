package filter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/filter"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name   string
		where  []string
		sample string
		lim    filter.Limits
		want   string
	}{
		{"too many terms", make17(), "", filter.Limits{}, `too many "where" parameters (17, at most 16)`},
		{"too many terms, own limit", []string{"a:1", "a:1", "a:1"}, "", filter.Limits{Terms: 2}, `too many "where" parameters (3, at most 2)`},
		{"no colon", []string{"type"}, "", filter.Limits{}, `where "type": missing ":" after the path`},
		{"empty term", []string{""}, "", filter.Limits{}, `where "": missing ":" after the path`},
		{"escaped colon only", []string{`a\:b`}, "", filter.Limits{}, `where "a\\:b": missing ":" after the path`},
		{"trailing backslash", []string{`a\`}, "", filter.Limits{}, `where "a\\": missing ":" after the path`},
		{"empty path", []string{":x"}, "", filter.Limits{}, `where ":x": empty path`},
		{"empty key inside", []string{"media..id:1"}, "", filter.Limits{}, `where "media..id:1": empty key in path`},
		{"empty key first", []string{".a:1"}, "", filter.Limits{}, `where ".a:1": empty key in path`},
		{"empty key last", []string{"a.:1"}, "", filter.Limits{}, `where "a.:1": empty key in path`},
		{"only a dot", []string{".:1"}, "", filter.Limits{}, `where ".:1": empty key in path`},
		{"second term wrong", []string{"type:error", "x"}, "", filter.Limits{}, `where "x": missing ":" after the path`},
		{"path too long", []string{long + ":1"}, "", filter.Limits{PathLen: 99},
			`where "` + long[:64] + `...": path longer than 99 bytes`},
		{"too many keys", []string{"a.b.c:1"}, "", filter.Limits{Segments: 2}, `where "a.b.c:1": more than 2 keys in path`},
		{"value too long", []string{"a:" + long}, "", filter.Limits{ValueLen: 10},
			`where "a:` + long[:62] + `...": value longer than 10 bytes`},
		{"sample too big", nil, "2", filter.Limits{}, `sample "2": must be a number greater than 0 and at most 1`},
		{"sample zero", nil, "0", filter.Limits{}, `sample "0": must be a number greater than 0 and at most 1`},
		{"sample negative", nil, "-0.5", filter.Limits{}, `sample "-0.5": must be a number greater than 0 and at most 1`},
		{"sample just above 1", nil, "1.0000001", filter.Limits{}, `sample "1.0000001": must be a number greater than 0 and at most 1`},
		{"sample NaN", nil, "NaN", filter.Limits{}, `sample "NaN": must be a number greater than 0 and at most 1`},
		{"sample Inf", nil, "Inf", filter.Limits{}, `sample "Inf": must be a number greater than 0 and at most 1`},
		{"sample hex", nil, "0x1p-2", filter.Limits{}, `sample "0x1p-2": must be a number greater than 0 and at most 1`},
		{"sample word", nil, "half", filter.Limits{}, `sample "half": must be a number greater than 0 and at most 1`},
		{"sample spaces", nil, " 0.5", filter.Limits{}, `sample " 0.5": must be a number greater than 0 and at most 1`},
		{"sample overflow", nil, "1e999", filter.Limits{}, `sample "1e999": must be a number greater than 0 and at most 1`},
		{"sample underflow", nil, "1e-999", filter.Limits{}, `sample "1e-999": must be a number greater than 0 and at most 1`},
		{"sample malformed", nil, "0.5e", filter.Limits{}, `sample "0.5e": must be a number greater than 0 and at most 1`},
		{"sample underscore", nil, "0.5_0", filter.Limits{}, `sample "0.5_0": must be a number greater than 0 and at most 1`},
		{"where before sample", []string{"x"}, "2", filter.Limits{}, `where "x": missing ":" after the path`},
		{"cut at a rune boundary", []string{"a" + strings.Repeat("é", 40)}, "", filter.Limits{},
			`where "a` + strings.Repeat("é", 31) + `...": missing ":" after the path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := filter.Parse(tc.where, tc.sample, tc.lim)
			if err == nil {
				t.Fatalf("Parse(%q, %q) = %v, want error %q", tc.where, tc.sample, f, tc.want)
			}
			if f != nil {
				t.Errorf("Parse(%q, %q) returned a filter (%v) with its error", tc.where, tc.sample, f)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse(%q, %q) error:\n got %s\nwant %s", tc.where, tc.sample, got, tc.want)
			}
			if !errors.Is(err, filter.ErrInvalid) {
				t.Errorf("Parse(%q, %q) error %v does not wrap ErrInvalid", tc.where, tc.sample, err)
			}
		})
	}
}

func make17() []string {
	w := make([]string, 17)
	for i := range w {
		w[i] = "type:error" // duplicates count: the limit is on the raw parameters
	}
	return w
}

// TestParseLimits checks each limit at its bound (accepted) and just over
// it (refused), with the defaults and with limits of its own.
func TestParseLimits(t *testing.T) {
	t.Parallel()
	d := filter.DefaultLimits
	if d != (filter.Limits{Terms: 16, PathLen: 256, Segments: 16, ValueLen: 1024}) {
		t.Fatalf("DefaultLimits = %+v", d)
	}
	terms := func(n int) []string {
		w := make([]string, n)
		for i := range w {
			w[i] = "k:" + strings.Repeat("v", i+1)
		}
		return w
	}
	path := func(n int) string { return strings.Repeat("p", n) }
	keys := func(n int) string { return strings.Repeat("k.", n-1) + "k" }
	for _, lim := range []filter.Limits{{}, d, {Terms: 3, PathLen: 10, Segments: 2, ValueLen: 5}, {Terms: -1, PathLen: -1, Segments: -1, ValueLen: -1}} {
		eff := lim
		if eff.Terms <= 0 {
			eff = d
		}
		for _, tc := range []struct {
			name  string
			where []string
			ok    bool
		}{
			{"terms at bound", terms(eff.Terms), true},
			{"terms over", terms(eff.Terms + 1), false},
			{"path at bound", []string{path(eff.PathLen) + ":v"}, true},
			{"path over", []string{path(eff.PathLen+1) + ":v"}, false},
			{"path with escapes over", []string{path(eff.PathLen-1) + `\x:v`}, false},
			{"keys at bound", []string{keys(eff.Segments) + ":v"}, true},
			{"keys over", []string{keys(eff.Segments+1) + ":v"}, false},
			{"value at bound", []string{"k:" + strings.Repeat("v", eff.ValueLen)}, true},
			{"value over", []string{"k:" + strings.Repeat("v", eff.ValueLen+1)}, false},
		} {
			f, err := filter.Parse(tc.where, "", lim)
			if tc.ok && (err != nil || f == nil) {
				t.Errorf("limits %+v, %s: Parse = %v, %v, want a filter", lim, tc.name, f, err)
			}
			if !tc.ok && !errors.Is(err, filter.ErrInvalid) {
				t.Errorf("limits %+v, %s: Parse error = %v, want ErrInvalid", lim, tc.name, err)
			}
		}
	}
}

func TestParseNoFilter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		where  []string
		sample string
	}{{nil, ""}, {[]string{}, ""}, {nil, "1"}, {nil, "1.0"}, {nil, "1e0"}} {
		f, err := filter.Parse(tc.where, tc.sample, filter.Limits{})
		if f != nil || err != nil {
			t.Errorf("Parse(%q, %q) = %v, %v, want no filter and no error", tc.where, tc.sample, f, err)
		}
	}
	var none *filter.Filter
	if !none.Matches([]byte(`{}`), 1) || none.Key() != "" || none.String() != "" || none.Fraction() != 1 {
		t.Errorf("nil *Filter: Matches %v, Key %q, String %q, Fraction %v; want true, \"\", \"\", 1",
			none.Matches([]byte(`{}`), 1), none.Key(), none.String(), none.Fraction())
	}
}

func TestParseValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		where  []string
		sample string
		str    string
		frac   float64
	}{
		{[]string{"media.id:urn:1", "type:warning", "type:error"}, "0.01", "media.id:urn:1 type:error|warning sample=0.01", 0.01},
		{[]string{"url:http://x:8080/a"}, "", "url:http://x:8080/a", 1},
		{[]string{`a\.b:1`}, "", `a\.b:1`, 1},
		{[]string{`a\:b:1`}, "", `a\:b:1`, 1},
		{[]string{`a\\b:1`}, "", `a\\b:1`, 1},
		{[]string{`a\xb:1`}, "", `axb:1`, 1},
		{[]string{`a\\.b:1`}, "", `a\\.b:1`, 1},
		{[]string{`k:a\.b`}, "", `k:a\.b`, 1}, // no unescaping in the value
		{[]string{"k:"}, "", `k:""`, 1},
		{[]string{"k:a b", "k:x|y", `k:"q"`, "k:\n"}, "", `k:"\n"|"\"q\""|"a b"|"x|y"`, 1},
		{[]string{"a b:1"}, "", `"a b":1`, 1},
		{[]string{"k:é"}, "", `k:é`, 1},
		{nil, "0.25", "sample=0.25", 0.25},
		{nil, ".5", "sample=0.5", 0.5},
		{nil, "5e-1", "sample=0.5", 0.5},
		{[]string{"k:v"}, "1", "k:v", 1},
		{[]string{"k:v"}, "0.000001", "k:v sample=1e-06", 0.000001},
	} {
		f, err := filter.Parse(tc.where, tc.sample, filter.Limits{})
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tc.where, tc.sample, err)
			continue
		}
		if got := f.String(); got != tc.str {
			t.Errorf("Parse(%q, %q).String() = %s, want %s", tc.where, tc.sample, got, tc.str)
		}
		if got := f.Fraction(); got != tc.frac {
			t.Errorf("Parse(%q, %q).Fraction() = %v, want %v", tc.where, tc.sample, got, tc.frac)
		}
	}
}

// TestKey checks that Key is the same for filters that select the same
// events by construction, and differs otherwise, also where a naive
// concatenation would collide.
func TestKey(t *testing.T) {
	t.Parallel()
	type q struct {
		where  []string
		sample string
	}
	same := [][]q{
		{{[]string{"a:1", "b:2"}, ""}, {[]string{"b:2", "a:1"}, ""}, {[]string{"b:2", "a:1", "b:2", "a:1"}, ""}},
		{{[]string{"a:1", "a:2"}, ""}, {[]string{"a:2", "a:1", "a:2"}, ""}},
		{{[]string{`a\xb:1`}, ""}, {[]string{"axb:1"}, ""}},
		{{[]string{"a:1"}, "0.5"}, {[]string{"a:1"}, ".50"}, {[]string{"a:1"}, "5e-1"}},
		{{[]string{"a:1"}, "1"}, {[]string{"a:1"}, ""}},
		{{nil, "0.1"}, {nil, "0.10"}},
	}
	different := []q{
		{[]string{"a:1"}, ""}, {[]string{"a:2"}, ""}, {[]string{"a:1", "a:2"}, ""}, {[]string{"a:1", "b:2"}, ""},
		{[]string{"a.b:1"}, ""}, {[]string{`a\.b:1`}, ""}, {[]string{"a:b:1"}, ""}, {[]string{`a\:b:1`}, ""},
		{[]string{"a:1|2"}, ""}, {[]string{"a:1", "a:2"}, "0.5"}, {[]string{"a:1"}, "0.5"}, {[]string{"a:1"}, "0.25"},
		{nil, "0.5"}, {nil, "0.25"}, {[]string{"a:"}, ""}, {[]string{"a:p1:x"}, ""}, {[]string{"a:", "p1:x"}, ""},
		{[]string{"a:v1:x"}, ""}, {[]string{"a:", "a:1:x"}, ""}, {[]string{"a:s0.5"}, ""},
	}
	key := func(c q) string {
		f, err := filter.Parse(c.where, c.sample, filter.Limits{})
		if err != nil || f == nil {
			t.Fatalf("Parse(%q, %q) = %v, %v", c.where, c.sample, f, err)
		}
		return f.Key()
	}
	for _, group := range same {
		want := key(group[0])
		for _, c := range group[1:] {
			if got := key(c); got != want {
				t.Errorf("Key(%q, %q) = %q, want %q as for %q", c.where, c.sample, got, want, group[0].where)
			}
		}
	}
	seen := map[string]q{}
	for _, c := range different {
		k := key(c)
		if prev, ok := seen[k]; ok {
			t.Errorf("Key(%q, %q) = Key(%q, %q) = %q", c.where, c.sample, prev.where, prev.sample, k)
		}
		seen[k] = c
	}
}

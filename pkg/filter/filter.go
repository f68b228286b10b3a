package filter

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Filter is a compiled listener filter (see the package documentation for
// what it selects), made by [Parse]. It is immutable and safe for concurrent
// use.
//
// A nil *Filter is no filter: it keeps every event ([Filter.Matches] is
// true, [Filter.Fraction] 1, [Filter.Key] and [Filter.String] ""). A [Set]
// given nil entries, on the other hand, reports none of them.
type Filter struct {
	one   *Set // a Set of this filter alone, for Matches, built by once
	key   string
	str   string
	paths []pathTerms // by increasing path text
	// fraction is the sample's fraction; sampled is false, and fraction
	// meaningless, when the filter has no sample (or sample=1).
	fraction float64
	once     sync.Once
	sampled  bool
}

// pathTerms are the where terms of one path: the event's field must match
// one of the values.
type pathTerms struct {
	path   string   // canonical text (joinKeys)
	keys   []string // unescaped
	values []string // increasing, without duplicates
}

// newFilter builds a Filter from parsed terms and a fraction (1 for no
// sample): it groups the terms by path, in canonical order, and computes
// the Key and the String.
func newFilter(terms []term, fraction float64) *Filter {
	f := &Filter{fraction: fraction, sampled: fraction < 1}
	slices.SortFunc(terms, func(a, b term) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, t := range terms {
		switch {
		case i == 0 || t.path != terms[i-1].path:
			f.paths = append(f.paths, pathTerms{path: t.path, keys: t.keys, values: []string{t.value}})
		case t.value != terms[i-1].value:
			p := &f.paths[len(f.paths)-1]
			p.values = append(p.values, t.value)
		}
	}
	f.key = f.buildKey()
	f.str = f.buildString()
	return f
}

// Key returns the filter's identity: two filters have the same Key if and
// only if they have the same paths, each with the same set of values, and
// the same fraction. So the order of the where terms, repeated terms, the
// spelling of a path (a\xb is axb) and of a fraction (0.5, .50, 5e-1) do not
// change it, and sample=1 is no sample. The text is unambiguous (every part
// is prefixed with its length) but not meant to be read: see
// [Filter.String]. A nil *Filter has the Key "".
//
// Key is safe for concurrent use and does not allocate.
func (f *Filter) Key() string {
	if f == nil {
		return ""
	}
	return f.key
}

// buildKey encodes the filter as a sequence of records, each a letter, then
// for p and v a length, a colon and that many bytes: p<path> for each path
// in order, followed by v<value> for each of its values in order, then
// s<fraction> (shortest decimal form) if the filter has a sample.
func (f *Filter) buildKey() string {
	var b []byte
	record := func(kind byte, s string) {
		b = append(b, kind)
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	for _, p := range f.paths {
		record('p', p.path)
		for _, v := range p.values {
			record('v', v)
		}
	}
	if f.sampled {
		b = append(b, 's')
		b = strconv.AppendFloat(b, f.fraction, 'g', -1, 64)
	}
	return string(b)
}

// String returns the filter for people (logs, a stream's greeting): each
// path with its values, path:value1|value2, separated by spaces, then
// sample=fraction if the filter has a sample, in the canonical order of
// [Filter.Key]:
//
//	media.id:urn:1 type:error|warning sample=0.01
//
// A path is written as Parse reads it (with \. \: \\ escapes); a path or
// value that is empty, or has a space, a '|', a '"' or a character that is
// not printable, is written as a Go quoted string ("a b", "", "\n"), so that
// the text stays on one line and its parts can be told apart. A nil *Filter
// is "". String is safe for concurrent use and does not allocate.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.str
}

func (f *Filter) buildString() string {
	var b []byte
	for i, p := range f.paths {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendShown(b, p.path)
		b = append(b, ':')
		for j, v := range p.values {
			if j > 0 {
				b = append(b, '|')
			}
			b = appendShown(b, v)
		}
	}
	if f.sampled {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, "sample="...)
		b = strconv.AppendFloat(b, f.fraction, 'g', -1, 64)
	}
	return string(b)
}

// appendShown appends s to b as String shows it: as it is, or quoted.
func appendShown(b []byte, s string) []byte {
	quote := s == ""
	for _, r := range s {
		if r == ' ' || r == '|' || r == '"' || r == utf8.RuneError || !unicode.IsPrint(r) {
			quote = true
			break
		}
	}
	if quote {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// Fraction returns the fraction of events the filter's sample keeps, 1 when
// it has no sample (or for a nil *Filter).
func (f *Filter) Fraction() float64 {
	if f == nil || !f.sampled {
		return 1
	}
	return f.fraction
}

// Matches reports whether the filter keeps the event with the given id, as
// [Set.Match] would for a Set of this filter alone (which Matches builds the
// first time it is called). A nil *Filter keeps every event.
//
// Matches is safe for concurrent use; it does not allocate once warm.
func (f *Filter) Matches(event []byte, id uint64) bool {
	if f == nil {
		return true
	}
	f.once.Do(func() { f.one = NewSet([]*Filter{f}) })
	var buf [1]int
	return len(f.one.Match(event, id, buf[:0])) > 0
}

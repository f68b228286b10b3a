package filter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error [Parse] returns: a where term or a
// sample that cannot be parsed, or a filter beyond its [Limits]. The error's
// own message (without this sentinel's text) names the parameter, the term
// and the reason, ready for an HTTP 400 response.
var ErrInvalid = errors.New("filter: invalid filter")

// Limits bounds the filters [Parse] accepts. A zero (or negative) field
// stands for the value of that field in [DefaultLimits].
type Limits struct {
	// Terms is the most where parameters a filter may have, counted as
	// given (duplicates included).
	Terms int
	// PathLen is the longest path of a where term, in bytes as written
	// (backslashes included).
	PathLen int
	// Segments is the most keys a path may have (a.b.c has 3).
	Segments int
	// ValueLen is the longest value of a where term, in bytes.
	ValueLen int
}

// The defaults of Limits' fields.
const (
	defaultTerms    = 16
	defaultPathLen  = 256
	defaultSegments = 16
	defaultValueLen = 1024
)

// DefaultLimits are the limits that a zero field of a [Limits] stands for.
// Changing this variable does not change what a zero field means.
var DefaultLimits = Limits{Terms: defaultTerms, PathLen: defaultPathLen, Segments: defaultSegments, ValueLen: defaultValueLen}

// orDefaults returns l with its zero or negative fields set to the defaults.
func (l Limits) orDefaults() Limits {
	or := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	return Limits{
		Terms:    or(l.Terms, defaultTerms),
		PathLen:  or(l.PathLen, defaultPathLen),
		Segments: or(l.Segments, defaultSegments),
		ValueLen: or(l.ValueLen, defaultValueLen),
	}
}

// parseError is an error of Parse: its message is meant for the client, and
// it wraps ErrInvalid without repeating the sentinel's text.
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }
func (e *parseError) Unwrap() error { return ErrInvalid }

// shownLen is the most bytes of a term or sample an error message quotes;
// longer ones are cut (at a rune boundary) and end with "...".
const shownLen = 64

// invalid returns the error for parameter param's value s, with the reason.
func invalid(param, s, reason string) error {
	if len(s) > shownLen {
		n := shownLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "..."
	}
	return &parseError{msg: param + " " + strconv.Quote(s) + ": " + reason}
}

// term is one parsed where term.
type term struct {
	path  string // the canonical path text: keys escaped by escapeKey, joined with dots
	value string
	keys  []string
}

// Parse compiles the where terms and the sample of a listener's query (the
// values of its where parameters in any order, and of its sample parameter,
// "" when there is none) into a Filter, within lim (see [Limits]). It returns
// a nil *Filter and no error when the query keeps every event: no where term
// and no sample, or no where term and sample=1. The error, when there is one,
// wraps [ErrInvalid] and says which parameter is wrong and why:
//
//	too many "where" parameters (17, at most 16)
//	where "media..id:1": empty key in path
//	sample "2": must be a number greater than 0 and at most 1
//
// Parse is safe for concurrent use. It allocates the Filter.
func Parse(where []string, sample string, lim Limits) (*Filter, error) {
	lim = lim.orDefaults()
	if len(where) > lim.Terms {
		return nil, &parseError{msg: fmt.Sprintf("too many %q parameters (%d, at most %d)", "where", len(where), lim.Terms)}
	}
	terms := make([]term, 0, len(where))
	for _, w := range where {
		t, err := parseTerm(w, lim)
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
	}
	fraction := 1.0
	if sample != "" {
		f, ok := parseFraction(sample)
		if !ok {
			return nil, invalid("sample", sample, "must be a number greater than 0 and at most 1")
		}
		fraction = f
	}
	if len(terms) == 0 && fraction == 1 {
		return nil, nil
	}
	return newFilter(terms, fraction), nil
}

// parseTerm parses one where term.
func parseTerm(w string, lim Limits) (term, error) {
	end := pathEnd(w)
	if end < 0 {
		return term{}, invalid("where", w, `missing ":" after the path`)
	}
	path, value := w[:end], w[end+1:]
	switch {
	case path == "":
		return term{}, invalid("where", w, "empty path")
	case len(path) > lim.PathLen:
		return term{}, invalid("where", w, fmt.Sprintf("path longer than %d bytes", lim.PathLen))
	}
	keys, err := splitPath(path, lim.Segments)
	if err != "" {
		return term{}, invalid("where", w, err)
	}
	if len(value) > lim.ValueLen {
		return term{}, invalid("where", w, fmt.Sprintf("value longer than %d bytes", lim.ValueLen))
	}
	return term{path: joinKeys(keys), value: value, keys: keys}, nil
}

// pathEnd returns the index of the first unescaped colon of w, or -1.
func pathEnd(w string) int {
	for i := 0; i < len(w); i++ {
		switch w[i] {
		case '\\':
			i++ // the next character is taken as it is
		case ':':
			return i
		}
	}
	return -1
}

// splitPath splits a path (without its colon) into its unescaped keys, or
// says why it cannot: an empty key, or more than maxKeys keys.
func splitPath(path string, maxKeys int) (keys []string, reason string) {
	var key []byte
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '\\':
			i++ // pathEnd found the colon after it: path[i] exists
			key = append(key, path[i])
		case '.':
			if len(key) == 0 {
				return nil, "empty key in path"
			}
			keys = append(keys, string(key))
			key = key[:0]
		default:
			key = append(key, c)
		}
	}
	if len(key) == 0 {
		return nil, "empty key in path"
	}
	keys = append(keys, string(key))
	if len(keys) > maxKeys {
		return nil, fmt.Sprintf("more than %d keys in path", maxKeys)
	}
	return keys, ""
}

// joinKeys returns the canonical text of a path: its keys with their dots,
// colons and backslashes escaped, joined with dots. Two paths have the same
// text if and only if they have the same keys, and Parse reads the text
// back as the same keys.
func joinKeys(keys []string) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('.')
		}
		for j := 0; j < len(k); j++ {
			if c := k[j]; c == '.' || c == ':' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(k[j])
		}
	}
	return b.String()
}

// parseFraction parses a sample: a decimal number (digits, a point, an
// exponent; no hexadecimal, Inf or NaN) greater than 0 and at most 1.
func parseFraction(s string) (float64, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9', c == '.', c == 'e', c == 'E', c == '+', c == '-':
		default:
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0 && f <= 1) {
		return 0, false
	}
	return f, true
}

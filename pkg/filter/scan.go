package filter

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON primitives of the locator and of TopLevelString. They take the
// event and an index into it and return the index where the thing read
// ends, or -1 when the input cannot be what was expected there. They are
// lenient (on invalid JSON they may read something), but they never index
// out of range and always move forward, so a caller's loop ends. None of
// them recurses: a deeply nested value is skipped with a counter.

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// stringEnd returns the index just after the closing quote of the string
// whose opening quote is b[i], and whether it has a backslash (an escape);
// -1 if it is not closed.
func stringEnd(b []byte, i int) (end int, escaped bool) {
	// Most strings (keys, ids) are short: a loop beats searching twice.
	j := i + 1
	for n := min(len(b), j+shortString); j < n; j++ {
		switch b[j] {
		case '"':
			return j + 1, false
		case '\\':
			return escapedEnd(b, j), true
		}
	}
	q := bytes.IndexByte(b[j:], '"')
	if q < 0 {
		return -1, false
	}
	if bs := bytes.IndexByte(b[j:j+q], '\\'); bs >= 0 {
		return escapedEnd(b, j+bs), true
	}
	return j + q + 1, false
}

// shortString is how many bytes of a string stringEnd reads one by one
// before it searches for the closing quote.
const shortString = 16

// escapedEnd returns the index just after the closing quote of a string
// from the backslash at b[j] on, or -1.
func escapedEnd(b []byte, j int) int {
	for ; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++ // the escaped byte (the rest of \uXXXX is plain)
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index just after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		return skipNested(b, i)
	}
	return literalEnd(b, i)
}

// literalEnd returns the index just after the number, true, false or null
// that starts at b[i]: the first delimiter after it.
func literalEnd(b []byte, i int) int {
	j := i
	for ; j < len(b); j++ {
		switch b[j] {
		case ',', '}', ']', ':', '"', '{', '[', ' ', '\n', '\r', '\t':
			if j == i {
				return -1
			}
			return j
		}
	}
	if j == i {
		return -1
	}
	return j
}

// skipNested returns the index just after the object or array that starts
// at b[i], counting brackets (of either kind) and skipping strings.
func skipNested(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			end, _ := stringEnd(b, i)
			if end < 0 {
				return -1
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return -1
}

// appendUnescaped appends to dst the content of a JSON string (s is what is
// between the quotes) with its escapes decoded as encoding/json decodes
// them (a lone or mismatched UTF-16 surrogate becomes U+FFFD). It reports
// false, with dst partly written, for a malformed escape.
func appendUnescaped(dst, s []byte) ([]byte, bool) {
	for {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			return append(dst, s...), true
		}
		dst = append(dst, s[:k]...)
		r, n := decodeEscape(s[k:])
		if n == 0 {
			return dst, false
		}
		dst = utf8.AppendRune(dst, r)
		s = s[k+n:]
	}
}

// unescapedEqual reports whether the content of a JSON string (s, between
// the quotes), unescaped as by appendUnescaped, is want; without writing the
// unescaped text anywhere.
func unescapedEqual(s []byte, want string) bool {
	for {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			return string(s) == want
		}
		if k > len(want) || string(s[:k]) != want[:k] {
			return false
		}
		want = want[k:]
		r, n := decodeEscape(s[k:])
		if n == 0 {
			return false
		}
		var enc [utf8.UTFMax]byte
		m := utf8.EncodeRune(enc[:], r)
		if m > len(want) || string(enc[:m]) != want[:m] {
			return false
		}
		want = want[m:]
		s = s[k+n:]
	}
}

// decodeEscape decodes the escape at the start of s (s[0] is a backslash):
// the rune it stands for and its length in s, 0 if it is malformed. A UTF-16
// surrogate pair, \uD83D\uDE00, is one escape of 12 bytes; a surrogate that
// is not the first of a valid pair is U+FFFD (and the next \u escape, if
// any, is decoded on its own).
func decodeEscape(s []byte) (rune, int) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[1] {
	case '"', '\\', '/':
		return rune(s[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r := hex4(s[2:])
		if r < 0 {
			return 0, 0
		}
		if !utf16.IsSurrogate(r) {
			return r, 6
		}
		if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
			if d := utf16.DecodeRune(r, hex4(s[8:])); d != utf8.RuneError {
				return d, 12
			}
		}
		return utf8.RuneError, 6
	}
	return 0, 0
}

// hex4 returns the value of the 4 hexadecimal digits that start s, or -1.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

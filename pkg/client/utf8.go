package client

import "unicode/utf8"

// appendValidUTF8 appends b to dst with every maximal subpart of an invalid
// UTF-8 sequence replaced by one U+FFFD, as the WHATWG Encoding standard's
// UTF-8 decoder does (and Unicode's "U+FFFD substitution of maximal
// subparts"): a lead byte followed by some, but not all, of the continuation
// bytes it announces is one error; any other invalid byte is one error. (Go's
// utf8.DecodeRune reports such a truncated sequence one byte at a time,
// strings.ToValidUTF8 collapses whole runs: neither is what browsers do.)
func appendValidUTF8(dst, b []byte) []byte {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != utf8.RuneError || size > 1 {
			dst = append(dst, b[:size]...)
			b = b[size:]
			continue
		}
		dst = append(dst, "\uFFFD"...)
		b = b[maximalSubpart(b):]
	}
	return dst
}

// maximalSubpart returns the length of the invalid sequence at the start of
// b: at least 1, and the lead byte with the continuation bytes that still
// fit the sequence it starts.
func maximalSubpart(b []byte) int {
	var need int
	lo, hi := byte(0x80), byte(0xBF) // the range of the second byte
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1 // not a lead byte
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}

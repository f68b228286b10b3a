package auth

import (
	"bytes"
	"regexp"
)

// Redacting free text: the lines a library writes about a request (fasthttp's
// own debug lines quote a request's head when it cannot parse it), where a
// secret may be anywhere: in a header, in a query parameter in any position,
// or a known token written as is.

// secretHeaders are the header names whose values are credentials.
var secretHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie"}

// jwtShape matches what looks like a JSON Web Token: three base64url parts,
// the first two starting as JSON objects do ("eyJ" is `{"`).
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)

// RedactText returns text with every credential it may hold replaced by
// [Redacted]: the value of every Authorization, Proxy-Authorization, Cookie
// and Set-Cookie header line (a line ends at a CR or LF, or at their escaped
// forms \r and \n, as a quoted request head shows them), the value of every
// "token" query parameter (whatever separates it from what comes before:
// '?', '&', ';', a space or a quote; its name percent-decoded as in
// [AppendRedactedURI]), anything shaped like a JSON Web Token, every
// occurrence of the given secrets (the configured tokens, say; empty ones
// are ignored), and the first line of the second part of a quoted head cut
// in two (see [cutMarker]).
//
// It allocates; it is meant for log lines, not for a hot path.
func RedactText(text []byte, secrets ...[]byte) string {
	out := bytes.Clone(text)
	for _, s := range secrets {
		if len(s) > 0 {
			out = bytes.ReplaceAll(out, s, []byte(Redacted))
		}
	}
	out = redactCutLines(out)
	out = jwtShape.ReplaceAll(out, []byte(Redacted))
	out = redactHeaders(out)
	return string(redactTokenParams(out))
}

// redactHeaders replaces the values of secret header lines.
func redactHeaders(text []byte) []byte {
	// ASCII only: bytes.ToLower would change the length of invalid UTF-8,
	// and the indices below are text's.
	folded := make([]byte, len(text))
	for i, c := range text {
		folded[i] = lower(c)
	}
	var dst []byte
	last := 0
	for i := 0; i < len(folded); i++ {
		if i > 0 && !isLineStart(folded, i) {
			continue
		}
		for _, name := range secretHeaders {
			rest := folded[i:]
			if !bytes.HasPrefix(rest, []byte(name)) {
				continue
			}
			j := i + len(name)
			for j < len(folded) && (folded[j] == ' ' || folded[j] == '\t') {
				j++
			}
			if j == len(folded) || folded[j] != ':' {
				continue
			}
			end := lineEnd(text, j+1)
			dst = append(dst, text[last:j+1]...)
			dst = append(dst, ' ')
			dst = append(dst, Redacted...)
			last, i = end, end-1
			break
		}
	}
	if dst == nil {
		return text
	}
	return append(dst, text[last:]...)
}

// isLineStart reports whether text[i] starts a line: after a CR or LF, their
// escaped forms, a quote or a space (fasthttp's messages run heads into the
// sentence before them).
func isLineStart(text []byte, i int) bool {
	switch c := text[i-1]; {
	case c == '\n' || c == '\r' || c == '"' || c == ' ' || c == '\t':
		return true
	case i >= 2 && text[i-2] == '\\' && (c == 'n' || c == 'r'):
		return true
	}
	return false
}

// lineEnd returns the index where the line holding text[from] ends.
func lineEnd(text []byte, from int) int {
	for i := from; i < len(text); i++ {
		switch text[i] {
		case '\r', '\n':
			return i
		case '\\':
			if i+1 < len(text) && (text[i+1] == 'r' || text[i+1] == 'n') {
				return i
			}
		}
	}
	return len(text)
}

// redactTokenParams replaces the values of "token" query parameters found
// anywhere in text.
func redactTokenParams(text []byte) []byte {
	var dst []byte
	last := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '=' {
			continue
		}
		start := i
		for start > 0 && !isParamDelim(text[start-1]) {
			start--
		}
		if !isTokenName(text[start:i]) {
			continue
		}
		end := i + 1
		for end < len(text) && !isValueEnd(text, end) {
			end++
		}
		dst = append(dst, text[last:i+1]...)
		dst = append(dst, Redacted...)
		last, i = end, end-1
	}
	if dst == nil {
		return text
	}
	return append(dst, text[last:]...)
}

func isParamDelim(c byte) bool {
	switch c {
	case '?', '&', ';', ' ', '\t', '"', '\'', '\r', '\n', '/', '\\':
		return true
	}
	return false
}

func isValueEnd(text []byte, i int) bool {
	switch text[i] {
	case '&', ';', ' ', '\t', '"', '\'', '#', '\r', '\n':
		return true
	case '\\':
		return i+1 < len(text) && (text[i+1] == 'r' || text[i+1] == 'n' || text[i+1] == '"')
	}
	return false
}

// cutMarker is how fasthttp quotes a request head longer than 400 bytes that
// it cannot parse: its first and last 200 bytes, each quoted, joined by
// "...", as in `"GET /events?token=eyJhbGciOi"..."XVCJ9.eyJzdWIi...\r\nX: 1\r\n"`.
// The second part starts anywhere, in the middle of a header value or of a
// token, where neither the header's name nor a token's shape can be seen.
const cutMarker = `"..."`

// redactCutLines replaces the line fragment that begins the second part of
// every quoted head cut in two, up to its line's end or the closing quote,
// with [Redacted]: it may be the end of a credential.
func redactCutLines(text []byte) []byte {
	if !bytes.Contains(text, []byte(cutMarker)) {
		return text
	}
	var dst []byte
	last := 0
	for i := 0; i+len(cutMarker) <= len(text); {
		at := bytes.Index(text[i:], []byte(cutMarker))
		if at < 0 {
			break
		}
		from := i + at + len(cutMarker)
		end := quotedLineEnd(text, from)
		if end > from {
			dst = append(dst, text[last:from]...)
			dst = append(dst, Redacted...)
			last = end
		}
		i = max(end, from)
	}
	if dst == nil {
		return text
	}
	return append(dst, text[last:]...)
}

// quotedLineEnd returns the index where the line of a Go-quoted string that
// holds text[from] ends: at an escaped CR or LF (\r, \n), or at the quote
// that closes the string.
func quotedLineEnd(text []byte, from int) int {
	for i := from; i < len(text); i++ {
		switch text[i] {
		case '"', '\r', '\n':
			return i
		case '\\':
			if i+1 < len(text) && (text[i+1] == 'r' || text[i+1] == 'n') {
				return i
			}
			i++ // an escaped character, \" included
		}
	}
	return len(text)
}

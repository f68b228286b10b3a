package auth

import "bytes"

// Redacted replaces the value of every token query parameter in a logged
// URI.
const Redacted = "REDACTED"

// AppendRedactedURI appends uri to dst with the value of every query
// parameter named "token" replaced by [Redacted], and returns the extended
// slice, for logging a request URI ("/events?token=s3cret&x=1" becomes
// "/events?token=REDACTED&x=1").
//
// A parameter is redacted when its name, percent-decoded and with '+' read
// as a space as fasthttp reads it, is "token" in any case: "token",
// "TOKEN", "%74oken" all are. Everything after the first '?' is the query,
// split at '&' only, so a token that a client failed to escape ('#' in it)
// is redacted whole. A parameter without '=' carries no value and is kept.
// The rest of uri is copied unchanged.
//
// AppendRedactedURI does not allocate when dst has room; it neither keeps
// nor modifies uri.
func AppendRedactedURI(dst, uri []byte) []byte {
	q := bytes.IndexByte(uri, '?')
	if q < 0 {
		return append(dst, uri...)
	}
	dst = append(dst, uri[:q+1]...)
	rest := uri[q+1:]
	for {
		end := bytes.IndexByte(rest, '&')
		param := rest
		if end >= 0 {
			param = rest[:end]
		}
		if eq := bytes.IndexByte(param, '='); eq >= 0 && isTokenName(param[:eq]) {
			dst = append(dst, param[:eq+1]...)
			dst = append(dst, Redacted...)
		} else {
			dst = append(dst, param...)
		}
		if end < 0 {
			return dst
		}
		dst = append(dst, '&')
		rest = rest[end+1:]
	}
}

// RedactedURI returns uri as a string with its token values redacted, as
// [AppendRedactedURI] does. It allocates the string; it is meant for log
// lines.
func RedactedURI(uri []byte) string {
	return string(AppendRedactedURI(make([]byte, 0, len(uri)+len(Redacted)), uri))
}

// isTokenName reports whether a raw query parameter name decodes to
// "token", ignoring case. It decodes as fasthttp does: "%XX" is a byte when
// XX is hex and a literal '%' otherwise, '+' is a space.
func isTokenName(raw []byte) bool {
	const name = QueryParam
	n := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '%':
			if i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
				c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
				i += 2
			}
		case '+':
			c = ' '
		}
		if n == len(name) || lower(c) != name[n] {
			return false
		}
		n++
	}
	return n == len(name)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

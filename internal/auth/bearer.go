package auth

// Bearer returns the token of an Authorization header value that uses the
// Bearer scheme (RFC 6750): "Bearer" in any case, then spaces or tabs, then
// the token, spaces and tabs around it removed. It reports false for an
// empty value, another scheme ("Basic ..."), or a Bearer value with no
// token.
//
// The returned slice aliases authorization; Bearer does not allocate.
func Bearer(authorization []byte) ([]byte, bool) {
	const scheme = "bearer"
	a := trim(authorization)
	if len(a) <= len(scheme) || !isSpace(a[len(scheme)]) {
		return nil, false
	}
	for i := range len(scheme) {
		if lower(a[i]) != scheme[i] {
			return nil, false
		}
	}
	tok := trim(a[len(scheme):])
	if len(tok) == 0 {
		return nil, false
	}
	return tok, true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// trim removes the spaces and tabs around b.
func trim(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

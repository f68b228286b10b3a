package auth

import "github.com/valyala/fasthttp"

// Where a listener may put its token besides the Authorization header.
const (
	// QueryParam is the query parameter that carries a listener's token:
	// GET /events?token=<token>. Its value is percent-decoded, and '+'
	// stands for a space as in forms, so a token with '+' must be sent
	// as %2B.
	QueryParam = "token"
	// CookieName is the cookie that carries a listener's token, for
	// browsers whose EventSource sends the page's cookies.
	CookieName = "dispatcher_token"
)

// ListenerToken returns the token a listener's request carries: the Bearer
// token of its Authorization header if it has one, else the [QueryParam]
// query parameter if it is not empty, else the [CookieName] cookie (nil
// when there is none). The first place that holds a token wins: a wrong
// Bearer token is not rescued by a right cookie.
//
// The returned slice points into req's buffers and is valid until req is
// modified or released; compare it ([Tokens.Match]) before the handler
// returns. ListenerToken parses req's query string and cookies, which
// fasthttp does once per request into buffers that it reuses, so it does not
// allocate once a server's request objects are warm.
func ListenerToken(req *fasthttp.Request) []byte {
	if tok, ok := Bearer(req.Header.Peek(fasthttp.HeaderAuthorization)); ok {
		return tok
	}
	if tok := req.URI().QueryArgs().Peek(QueryParam); len(tok) > 0 {
		return tok
	}
	return req.Header.Cookie(CookieName)
}

// ListenerTokenNotInQuery is ListenerToken for deployments that forbid
// secrets in URLs: the [QueryParam] query parameter is ignored, as if it were
// absent (a request with only that is then without a token).
func ListenerTokenNotInQuery(req *fasthttp.Request) []byte {
	if tok, ok := Bearer(req.Header.Peek(fasthttp.HeaderAuthorization)); ok {
		return tok
	}
	return req.Header.Cookie(CookieName)
}

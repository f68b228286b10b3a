package server

import (
	"strconv"

	"github.com/valyala/fasthttp"
)

// Cross-origin resource sharing (Fetch standard, "CORS protocol").
//
// Every response carries Access-Control-Allow-Origin: "*" by default, so any
// page may POST events (navigator.sendBeacon, fetch) and open an EventSource.
// With an allow-list, the header echoes the request's Origin when it is
// listed (with "Vary: Origin", as caches must not mix origins), and a request
// from an unlisted origin is refused with 403 before anything else happens.

const (
	allowMethods = "GET, POST, OPTIONS"
	allowHeaders = "Content-Type, Authorization, Last-Event-ID"
	// preflightMaxAge lets browsers cache a preflight answer for a day.
	preflightMaxAge = 86400
)

// cors applies the configured origin policy.
type cors struct {
	allowed map[string]struct{} // nil: any origin
	maxAge  string
}

func newCORS(origins []string) cors {
	c := cors{maxAge: strconv.Itoa(preflightMaxAge)}
	if len(origins) == 1 && origins[0] == "*" {
		return c
	}
	c.allowed = make(map[string]struct{}, len(origins))
	for _, o := range origins {
		c.allowed[o] = struct{}{}
	}
	return c
}

// apply sets the response's CORS headers and reports whether the request's
// origin is allowed.
func (c *cors) apply(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Response.Header
	if c.allowed == nil {
		h.Set(fasthttp.HeaderAccessControlAllowOrigin, "*")
		return true
	}
	h.Set(fasthttp.HeaderVary, "Origin")
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if len(origin) == 0 {
		return true // not a browser's cross-origin request
	}
	if _, ok := c.allowed[string(origin)]; !ok { // no allocation: map lookup by []byte conversion
		return false
	}
	h.SetBytesV(fasthttp.HeaderAccessControlAllowOrigin, origin)
	return true
}

// preflight answers an OPTIONS request.
func (c *cors) preflight(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderAccessControlAllowMethods, allowMethods)
	h.Set(fasthttp.HeaderAccessControlAllowHeaders, allowHeaders)
	h.Set(fasthttp.HeaderAccessControlMaxAge, c.maxAge)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

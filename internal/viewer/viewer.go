// Package viewer serves the live viewer: one self-contained HTML page (CSS
// and JavaScript inline, no external asset) that reads /events with fetch and
// its own Server-Sent Events parser (so that it sees HTTP statuses, sends
// headers and reads the service's topic field), resuming with Last-Event-ID
// as EventSource does, and shows the connection state, the event rate, the
// service's listener and event counts from /health, and the latest events as
// syntax-coloured JSON with a text filter, pause and clear. Its server-side
// filter bar builds the where and sample parameters of /events (the service
// filters, and the page shows how it understood them, or why it refused
// them); the page's URL carries them, so a filtered view can be shared.
//
// The page is embedded in the binary. It needs no publish token; when its own
// URL carries ?token=..., it sends that token to /events as a bearer token.
// When /events refuses it (401), it says how to give a listen token and
// retries only when asked, or after a long delay.
package viewer

import (
	"crypto/sha256"
	_ "embed" // the page
	"encoding/base64"

	"github.com/valyala/fasthttp"
)

// page is the viewer, served as it is stored.
//
//go:embed viewer.html
var page []byte

// Response headers, computed once at init from the page.
var (
	// etag is a strong entity tag: the page's SHA-256, so it changes with
	// every build that changes the page and only then.
	etag = computeETag(page)
	// csp is the page's Content-Security-Policy; it allows the inline
	// script and style by their hashes and nothing else inline.
	csp = mustPolicy(page)
)

func computeETag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// Handler serves the page on GET (and HEAD) requests: 200 with the page, or
// 304 without a body when the request's If-None-Match names the page's
// ETag. Every answer carries the same caching and security headers:
// Cache-Control: no-cache (revalidate each time: the page changes with the
// binary), the ETag, X-Content-Type-Options: nosniff, Referrer-Policy:
// no-referrer (the page's URL may carry a listen token) and a strict
// Content-Security-Policy (see [ContentSecurityPolicy]).
//
// Handler is safe for concurrent use and does not allocate for the body: the
// response refers to the embedded page, which must not be modified.
func Handler(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-cache")
	h.Set(fasthttp.HeaderETag, etag)
	h.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")
	h.Set(fasthttp.HeaderReferrerPolicy, "no-referrer")
	h.Set(fasthttp.HeaderContentSecurityPolicy, csp)
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatches(inm, etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	h.SetContentType("text/html; charset=utf-8")
	ctx.Response.SetBodyRaw(page)
}

// ContentSecurityPolicy returns the policy the page is served with: nothing
// may load or run but the page's own inline script and style (allowed by
// their SHA-256 hashes) and connections to the page's own origin (/events
// and /health). The page may not be framed, and forms post nowhere.
func ContentSecurityPolicy() string { return csp }

// ETag returns the page's entity tag, quoted, as sent in the ETag header.
func ETag() string { return etag }

package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/valyala/fasthttp"
)

// Reading a request body.
//
// The producer-facing server streams request bodies (fasthttp's
// StreamRequestBody, with a limit of one byte, so that fasthttp itself never
// buffers more than that): the handler is called once the head is read, and
// reads the body here, into a buffer that grows with what actually arrives,
// doubling up to the limit. A client that announces a large body and sends a
// few bytes costs a few bytes, and credentials were checked from the head
// before any of it was read.

var (
	errBodyTooLarge  = errors.New("body too large")
	errBodyTimeout   = errors.New("body not received in time")
	errBodyTruncated = errors.New("body shorter than its Content-Length")
)

const (
	bodyBufSize      = 4 << 10
	maxPooledBodyBuf = 256 << 10
)

var bodyBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, bodyBufSize)
	return &b
}}

// readBody returns the request's body, at most limit bytes, and a function to
// call once the body is no longer used.
func (s *Server) readBody(ctx *fasthttp.RequestCtx, limit int) (body []byte, release func(), err error) {
	r := ctx.RequestBodyStream()
	if r == nil {
		body = ctx.PostBody()
		if len(body) > limit {
			return nil, func() {}, errBodyTooLarge
		}
		return body, func() {}, nil
	}
	bp := bodyBufs.Get().(*[]byte) //nolint:forcetypeassert // the pool holds *[]byte
	release = func() {
		if cap(*bp) <= maxPooledBodyBuf {
			*bp = (*bp)[:0]
			bodyBufs.Put(bp)
		}
	}
	// A body announced with a Content-Length must arrive whole: fasthttp
	// reports a connection closed before its end as the body's end.
	announced := ctx.Request.Header.ContentLength()
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			// Grow with what arrived, up to one byte past the limit (to
			// tell a body of exactly limit bytes from a larger one), or
			// past what was announced.
			most := limit + 1
			if announced >= 0 {
				most = min(most, announced+1)
			}
			nb := make([]byte, len(b), max(min(2*cap(b), most), len(b)+1))
			copy(nb, b)
			b = nb
		}
		n, rerr := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > limit {
			*bp = b
			return nil, release, errBodyTooLarge
		}
		if errors.Is(rerr, io.EOF) {
			*bp = b
			if announced >= 0 && len(b) < announced {
				return nil, release, errBodyTruncated
			}
			return b, release, nil
		}
		if rerr != nil {
			*bp = b
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() {
				return nil, release, errBodyTimeout
			}
			return nil, release, fmt.Errorf("reading the body: %w", rerr)
		}
	}
}

// refuseBody answers a POST whose body could not be read.
func (s *Server) refuseBody(ctx *fasthttp.RequestCtx, err error, limit int) {
	drainOnClose(ctx.Conn())
	ctx.SetConnectionClose()
	switch {
	case errors.Is(err, errBodyTooLarge):
		s.reject(ctx, RejectTooLarge, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit))
	case errors.Is(err, errBodyTimeout):
		s.reject(ctx, RejectTimeout, fasthttp.StatusRequestTimeout, "request timeout")
	case errors.Is(err, errBodyTruncated):
		s.reject(ctx, RejectMalformed, fasthttp.StatusBadRequest, "body ended before its Content-Length; nothing was published")
	default:
		s.reject(ctx, RejectMalformed, fasthttp.StatusBadRequest, "malformed or truncated body; nothing was published")
	}
}

package server

import (
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
)

// peerIP returns the address of the connection's other end.
func (s *Server) peerIP(ctx *fasthttp.RequestCtx) netip.Addr {
	return clientip.Peer(ctx.RemoteAddr())
}

// clientIP returns the producer's address: the peer's, or, when the peer is a
// trusted proxy, the rightmost X-Forwarded-For entry that is not itself a
// trusted proxy, walking back from the peer, so that a client cannot choose
// it (the entries left of it are whatever the client wrote).
func (s *Server) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	return s.proxies.Resolve(s.peerIP(ctx), ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor))
}

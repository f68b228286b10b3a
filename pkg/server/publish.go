package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/netip"
	"unsafe"

	"github.com/goccy/go-json/jsontext"
	"github.com/valyala/fasthttp"

	"github.com/SRGSSR/pillarbox-event-dispatcher/pkg/fanout"
)

// handlePublish is POST /api/events: validate and compact the body, add the
// producer's address, build the SSE frame once and publish it. It answers 200
// with an empty body once the event is in the ring.
//
// Any Content-Type is accepted: navigator.sendBeacon sends text/plain.
func (s *Server) handlePublish(ctx *fasthttp.RequestCtx) {
	if s.closing.Load() {
		s.reject(ctx, fasthttp.StatusServiceUnavailable, "shutting down")
		return
	}
	if !s.token.ok(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="pillarbox-event-dispatcher"`)
		s.reject(ctx, fasthttp.StatusUnauthorized, "missing or invalid publish token")
		return
	}
	body := ctx.PostBody()
	// The frame is owned by the ring from here on, so it cannot come from a
	// pool: this allocation, and the Frame's, are the only ones per event.
	frame, err := s.events.build(make([]byte, 0, s.events.frameSize(len(body))), body, s.clientIP(ctx))
	if err != nil {
		s.reject(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if _, err := s.ring.Publish(fanout.NewFrame(frame)); err != nil {
		s.reject(ctx, fasthttp.StatusServiceUnavailable, "shutting down")
		return
	}
	s.stats.accepted.Add(1)
}

func (s *Server) reject(ctx *fasthttp.RequestCtx, status int, msg string) {
	s.stats.rejected.Add(1)
	writeError(ctx, status, msg)
}

// clientIP returns the producer's address: the first X-Forwarded-For entry
// when the peer is a trusted proxy and the entry is an IP address, else the
// peer's own address. IPv4-mapped IPv6 addresses are reported as IPv4, and
// zones are dropped.
func (s *Server) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	var peer netip.Addr
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer, _ = netip.AddrFromSlice(tcp.IP)
		peer = peer.Unmap()
	}
	if !s.trusted(peer) {
		return peer
	}
	if ip, ok := firstForwarded(ctx.Request.Header.Peek(fasthttp.HeaderXForwardedFor)); ok {
		return ip
	}
	return peer
}

func (s *Server) trusted(peer netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// firstForwarded parses the first entry of an X-Forwarded-For value, which
// may carry a port ("1.2.3.4:5678", "[2001:db8::1]:443").
func firstForwarded(xff []byte) (netip.Addr, bool) {
	for i, c := range xff {
		if c == ',' {
			xff = xff[:i]
			break
		}
	}
	entry := trimSpace(xff)
	if len(entry) == 0 {
		return netip.Addr{}, false
	}
	// The parsers neither keep nor modify the string: view the bytes in
	// place instead of copying them on every request.
	str := unsafe.String(&entry[0], len(entry))
	if ip, err := netip.ParseAddr(str); err == nil {
		return ip.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(str); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// tokenCheck compares bearer tokens in constant time. The zero value accepts
// every request.
type tokenCheck struct {
	want [sha256.Size]byte
	on   bool
}

func newTokenCheck(token string) tokenCheck {
	if token == "" {
		return tokenCheck{}
	}
	return tokenCheck{want: sha256.Sum256([]byte(token)), on: true}
}

// ok reports whether the Authorization header value carries the token.
// Comparing digests keeps the time independent of where the values differ
// and of the token's length.
func (t *tokenCheck) ok(authorization []byte) bool {
	if !t.on {
		return true
	}
	const prefix = "Bearer "
	if len(authorization) < len(prefix) || !asciiEqualFold(authorization[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256(trimSpace(authorization[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], t.want[:]) == 1
}

func asciiEqualFold(b []byte, s string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	out, _ := jsontext.AppendQuote(dst, s) // invalid UTF-8 becomes U+FFFD
	return out
}

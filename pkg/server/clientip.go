package server

import (
	"net"
	"net/netip"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// peerIP returns the address of the connection's other end, IPv4-mapped
// addresses as IPv4.
func (s *Server) peerIP(ctx *fasthttp.RequestCtx) netip.Addr {
	var peer netip.Addr
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer, _ = netip.AddrFromSlice(tcp.IP)
		peer = peer.Unmap()
	}
	return peer
}

// clientIP returns the producer's address: the peer's, or, when the peer is a
// trusted proxy, the rightmost X-Forwarded-For entry that is not itself a
// trusted proxy, walking back from the peer, so that a client cannot choose
// it (the entries left of it are whatever the client wrote). An entry that
// is not an address stops the walk at the last address established.
func (s *Server) clientIP(ctx *fasthttp.RequestCtx) netip.Addr {
	addr := s.peerIP(ctx)
	if !s.trusted(addr) {
		return addr
	}
	values := ctx.Request.Header.PeekAll(fasthttp.HeaderXForwardedFor)
	for i := len(values) - 1; i >= 0; i-- {
		xff := values[i]
		for len(xff) > 0 {
			entry := xff
			if j := lastComma(xff); j >= 0 {
				entry, xff = xff[j+1:], xff[:j]
			} else {
				xff = nil
			}
			ip, ok := parseForwarded(trimSpace(entry))
			if !ok {
				return addr
			}
			addr = ip
			if !s.trusted(addr) {
				return addr
			}
		}
	}
	return addr
}

func lastComma(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ',' {
			return i
		}
	}
	return -1
}

func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseForwarded parses one X-Forwarded-For entry, which may carry a port
// ("1.2.3.4:5678", "[2001:db8::1]:443").
func parseForwarded(entry []byte) (netip.Addr, bool) {
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

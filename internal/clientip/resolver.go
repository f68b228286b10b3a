package clientip

import (
	"bytes"
	"net"
	"net/netip"
)

// Resolver resolves client addresses for one list of trusted proxies.
//
// A Resolver is immutable once made: it is safe for concurrent use, and its
// methods neither block nor allocate (see [Resolver.Resolve] for the one
// exception). The zero value trusts nobody, so it always returns the peer.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts the X-Forwarded-For entries appended by
// peers inside one of the prefixes. The prefixes are copied and normalized:
// masked, and an IPv4-mapped IPv6 prefix of 96 bits or more becomes the IPv4
// prefix it covers, since addresses are unmapped before they are matched.
// Invalid prefixes (the zero netip.Prefix) match nothing.
//
// Matching is a linear scan, which is the fastest for the handful of
// prefixes a deployment has.
func New(trusted []netip.Prefix) *Resolver {
	r := &Resolver{trusted: make([]netip.Prefix, 0, len(trusted))}
	for _, p := range trusted {
		if !p.IsValid() {
			continue
		}
		r.trusted = append(r.trusted, normalize(p))
	}
	return r
}

// normalize masks p and turns an IPv4-mapped prefix into an IPv4 one.
func normalize(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// Trusted reports whether a lies inside one of the trusted prefixes. An
// IPv4-mapped address is matched as the IPv4 address it maps; the invalid
// address is never trusted.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client's address for a request received from peer with
// the given X-Forwarded-For header lines, in the order they appear in the
// request (fasthttp's RequestHeader.PeekAll gives them so, without
// allocating). The lines are read, never kept or modified.
//
// The rule, so that no client can choose the result:
//   - if peer is not a trusted proxy, the result is peer;
//   - otherwise the entries of all lines, taken as one comma-separated list,
//     are walked from the right. Trusted entries are skipped; the first
//     entry that is not trusted is the result;
//   - an entry that is not an address stops the walk: the result is the last
//     address established (the trusted hop that sent the garbage, or peer);
//   - when every entry is trusted, the result is the leftmost one.
//
// An entry is an IPv4 or IPv6 address, surrounded by spaces or tabs or not,
// with or without a port ("192.0.2.1:5678", "[2001:db8::1]:443"; an IPv6
// address takes a port only in brackets) and with or without a zone
// ("fe80::1%eth0"). Empty entries, "unknown", obfuscated identifiers and
// anything else are not addresses. The result, like peer, is unmapped and
// has no zone.
//
// Resolve does not allocate, with one exception: an entry that looks like an
// IPv6 address (hex digits, dots and at least two colons) and still is not
// one costs the single allocation of net/netip's error value. Such an entry is
// only read when every hop to its right is a trusted proxy.
func (r *Resolver) Resolve(peer netip.Addr, xff [][]byte) netip.Addr {
	peer = peer.Unmap().WithZone("")
	if !r.Trusted(peer) {
		return peer
	}
	last := peer
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		end := len(line)
		for {
			start := bytes.LastIndexByte(line[:end], ',') + 1
			a, ok := ParseEntry(line[start:end])
			if !ok {
				return last
			}
			if !r.Trusted(a) {
				return a
			}
			last = a
			if start == 0 {
				break
			}
			end = start - 1
		}
	}
	return last
}

// Peer returns the IP address of a connection's remote address, as given by
// net.Conn.RemoteAddr or fasthttp's RequestCtx.RemoteAddr: unmapped and
// without zone for a *net.TCPAddr or *net.UDPAddr, the invalid address for
// anything else (a Unix socket, for instance). It does not allocate.
func Peer(addr net.Addr) netip.Addr {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

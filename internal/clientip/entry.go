package clientip

import (
	"bytes"
	"net/netip"
	"unsafe"
)

// ParseEntry parses one X-Forwarded-For entry: an IPv4 or IPv6 address,
// optionally surrounded by spaces or tabs, optionally with a port
// ("192.0.2.1:5678", "[2001:db8::1]:443") and a zone ("fe80::1%eth0"). It
// returns the address unmapped and without zone, and false for anything
// else, including an empty entry and an IPv6 address with a port but no
// brackets (which cannot be told apart from an address). A bracketed address
// ends at the first "]", so "[::%]]" is refused rather than read as a zone
// named "]".
//
// The entry is read, never kept or modified. ParseEntry does not allocate,
// except for the one error allocation described at [Resolver.Resolve].
func ParseEntry(entry []byte) (netip.Addr, bool) {
	entry = trim(entry)
	host, ok := splitHostPort(entry)
	if !ok {
		return netip.Addr{}, false
	}
	v6 := bytes.IndexByte(host, ':') >= 0
	// The zone is dropped before parsing: netip interns zones, which would
	// cost an allocation per distinct zone, and the result has none anyway.
	if i := bytes.IndexByte(host, '%'); i >= 0 {
		if !v6 || i == len(host)-1 {
			return netip.Addr{}, false
		}
		host = host[:i]
	}
	if !plausible(host, v6) {
		return netip.Addr{}, false
	}
	// netip.ParseAddr neither keeps nor modifies its argument: view the
	// bytes in place rather than copy them.
	a, err := netip.ParseAddr(unsafe.String(unsafe.SliceData(host), len(host)))
	if err != nil || a.Is6() != v6 {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// splitHostPort returns the address part of an entry, checking the port if
// there is one. IPv6 takes a port only in brackets; bracketed content must
// be IPv6.
func splitHostPort(entry []byte) ([]byte, bool) {
	if len(entry) == 0 {
		return nil, false
	}
	if entry[0] == '[' {
		end := bytes.IndexByte(entry, ']')
		if end < 0 {
			return nil, false
		}
		host, rest := entry[1:end], entry[end+1:]
		if bytes.IndexByte(host, ':') < 0 {
			return nil, false
		}
		if len(rest) == 0 {
			return host, true
		}
		return host, rest[0] == ':' && validPort(rest[1:])
	}
	first := bytes.IndexByte(entry, ':')
	if first < 0 || bytes.IndexByte(entry[first+1:], ':') >= 0 {
		return entry, true // IPv4, or IPv6 without port
	}
	return entry[:first], validPort(entry[first+1:]) // IPv4:port
}

// validPort reports whether p is a decimal port number, 0 to 65535 (leading
// zeros allowed, as net/netip allows them).
func validPort(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return true
}

// plausible rejects, without the cost of netip's error value, a host that
// cannot be an address. For IPv4 the check is complete (four decimal fields
// of 0 to 255 without leading zeros, as netip wants), so netip never fails
// on what it lets through; for IPv6 it only checks the characters (hex
// digits, colons, dots) and the length.
func plausible(host []byte, v6 bool) bool {
	if v6 {
		if len(host) > len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255") {
			return false
		}
		for _, c := range host {
			if !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		return true
	}
	fields := 0
	for len(host) > 0 && fields < 4 {
		n, digits := 0, 0
		for digits < len(host) && '0' <= host[digits] && host[digits] <= '9' {
			n = n*10 + int(host[digits]-'0')
			digits++
			if digits > 3 {
				return false
			}
		}
		if digits == 0 || n > 255 || digits > 1 && host[0] == '0' {
			return false
		}
		fields++
		host = host[digits:]
		if fields < 4 {
			if len(host) == 0 || host[0] != '.' {
				return false
			}
			host = host[1:]
		}
	}
	return fields == 4 && len(host) == 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// trim removes the spaces and tabs around b.
func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

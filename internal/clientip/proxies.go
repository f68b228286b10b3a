package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseProxies parses a list of trusted proxies as given on the command
// line: comma-separated CIDRs ("10.0.0.0/8", "2001:db8::/32") or single
// addresses ("192.0.2.7", which means 192.0.2.7/32), spaces around items
// ignored. "none", alone, and the empty value mean no proxy: an empty,
// non-nil slice.
//
// CIDRs are masked ("10.1.2.3/8" is 10.0.0.0/8), zones are dropped, and
// IPv4-mapped prefixes of 96 bits or more become IPv4 prefixes, as [New]
// does. An item that is neither a CIDR nor an address, an empty item
// ("a,,b", a trailing comma) or "none" beside other items yields an error
// wrapping [ErrInvalidProxy] that names the item and its position (from 1).
func ParseProxies(v string) ([]netip.Prefix, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "none" {
		return []netip.Prefix{}, nil
	}
	items := strings.Split(v, ",")
	ps := make([]netip.Prefix, 0, len(items))
	for i, item := range items {
		item = strings.TrimSpace(item)
		p, why := parseProxy(item)
		if why != "" {
			return nil, fmt.Errorf("%w: item %d %q: %s", ErrInvalidProxy, i+1, item, why)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// parseProxy parses one item; a non-empty why says what is wrong with it.
func parseProxy(item string) (p netip.Prefix, why string) {
	switch item {
	case "":
		return p, "empty item"
	case "none":
		return p, `"none" must be the only item`
	}
	if strings.Contains(item, "/") {
		q, err := netip.ParsePrefix(item)
		if err != nil {
			return p, "not a CIDR (want address/bits, as 10.0.0.0/8)"
		}
		return normalize(q), ""
	}
	a, err := netip.ParseAddr(item)
	if err != nil {
		return p, "not a CIDR or an IP address"
	}
	a = a.WithZone("").Unmap()
	return netip.PrefixFrom(a, a.BitLen()), ""
}

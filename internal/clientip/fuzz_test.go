package clientip_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
)

var entrySeeds = []string{
	"192.0.2.1", " 192.0.2.1\t", "192.0.2.1:5678", "[2001:db8::1]:443", "[2001:db8::1]",
	"2001:db8::1", "fe80::1%eth0", "[fe80::1%eth0]:80", "::ffff:192.0.2.1", "::",
	"", "unknown", "_hidden", "192.0.2.256", "01.2.3.4", "1::2::3", "[192.0.2.1]:80",
	"192.0.2.1:", "192.0.2.1:65536", "fe80::1%", "1.2.3.4%x", "[::1", "[::1]x",
	"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "[::%]]", "[::%]]:80", "[::1]:",
	"[::1]]", "fe80::1%]",
}

// referenceEntry is what ParseEntry promises, written the slow, obvious way
// with net/netip's own parsers.
func referenceEntry(entry string) (netip.Addr, bool) {
	e := strings.Trim(entry, " \t")
	if inside, rest, ok := strings.Cut(strings.TrimPrefix(e, "["), "]"); ok && strings.HasPrefix(e, "[") {
		// In brackets: IPv6 up to the first "]", then nothing or a port.
		a, err := netip.ParseAddr(inside)
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		if rest != "" {
			if _, err := netip.ParseAddrPort("[::]" + rest); err != nil {
				return netip.Addr{}, false
			}
		}
		return a.WithZone("").Unmap(), true
	}
	if a, err := netip.ParseAddr(e); err == nil {
		return a.WithZone("").Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(e); err == nil && ap.Addr().Is4() {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func FuzzParseEntry(f *testing.F) {
	for _, s := range entrySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, entry string) {
		got, ok := clientip.ParseEntry([]byte(entry))
		want, wantOK := referenceEntry(entry)
		if ok != wantOK || got != want {
			t.Fatalf("ParseEntry(%q) = %v, %v; netip says %v, %v", entry, got, ok, want, wantOK)
		}
		if ok && (got.Zone() != "" || got.Is4In6()) {
			t.Fatalf("ParseEntry(%q) = %v: zone or mapped address left", entry, got)
		}
	})
}

// referenceResolve is the documented rule over a flat list of entries.
func referenceResolve(trusted []netip.Prefix, peer netip.Addr, xff []string) netip.Addr {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	peer = peer.Unmap().WithZone("")
	if !isTrusted(peer) {
		return peer
	}
	var entries []string
	for _, line := range xff {
		entries = append(entries, strings.Split(line, ",")...)
	}
	last := peer
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := referenceEntry(entries[i])
		if !ok {
			return last
		}
		if !isTrusted(a) {
			return a
		}
		last = a
	}
	return last
}

func FuzzResolve(f *testing.F) {
	f.Add("127.0.0.1", "6.6.6.6, 203.0.113.50")
	f.Add("127.0.0.1", "10.0.0.3, 10.0.0.2\n10.0.0.1")
	f.Add("::ffff:127.0.0.1", "garbage, 203.0.113.50, ::ffff:10.0.0.1")
	f.Add("::1", "[2001:db8::1]:443,fe80::1%eth0")
	f.Add("198.51.100.1", "203.0.113.50")
	f.Add("127.0.0.1", "203.0.113.50,\n,")
	f.Add("10.0.0.1", "")
	proxies := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fe80::/10"),
	}
	r := clientip.New(proxies)
	f.Fuzz(func(t *testing.T, peerText, header string) {
		peer, _ := netip.ParseAddr(peerText)
		var xff []string
		if header != "" {
			xff = strings.Split(header, "\n")
		}
		hdr := make([][]byte, len(xff))
		for i, l := range xff {
			hdr[i] = []byte(l)
		}
		got := r.Resolve(peer, hdr)
		if want := referenceResolve(proxies, peer, xff); got != want {
			t.Fatalf("Resolve(%v, %q) = %v, want %v", peer, xff, got, want)
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("Resolve(%v, %q) = %v: zone or mapped address left", peer, xff, got)
		}
	})
}

func FuzzParseProxies(f *testing.F) {
	for _, s := range []string{
		"", "none", "127.0.0.0/8, ::1, 10.0.0.0/8", "10.1.2.3/8", "::ffff:10.0.0.0/104",
		"fe80::1%eth0", "10.0.0.0/33", "a,,b", "none,none", "0.0.0.0/0", " 192.0.2.1 ,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ps, err := clientip.ParseProxies(v)
		if err != nil {
			if !errors.Is(err, clientip.ErrInvalidProxy) || ps != nil {
				t.Fatalf("ParseProxies(%q) = %v, %v", v, ps, err)
			}
			return
		}
		text := make([]string, len(ps))
		for i, p := range ps {
			if p != p.Masked() || p.Addr().Zone() != "" || (p.Addr().Is4In6() && p.Bits() >= 96) {
				t.Fatalf("ParseProxies(%q) gave the unnormalized prefix %v", v, p)
			}
			text[i] = p.String()
		}
		again, err := clientip.ParseProxies(strings.Join(text, ","))
		if err != nil || len(again) != len(ps) {
			t.Fatalf("ParseProxies(%q) = %v, which does not parse back: %v, %v", v, ps, again, err)
		}
		for i := range ps {
			if again[i] != ps[i] {
				t.Fatalf("ParseProxies(%q) = %v, parsed back as %v", v, ps, again)
			}
		}
	})
}

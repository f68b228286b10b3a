package clientip_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/clientip"
)

// lines splits a test's header description into header lines: "|" separates
// lines, so "a, b|c" is two X-Forwarded-For lines.
func lines(s string) [][]byte {
	if s == "" {
		return nil
	}
	var out [][]byte
	for _, l := range strings.Split(s, "|") {
		out = append(out, []byte(l))
	}
	return out
}

func resolver(tb testing.TB, proxies string) *clientip.Resolver {
	tb.Helper()
	ps, err := clientip.ParseProxies(proxies)
	if err != nil {
		tb.Fatal(err)
	}
	return clientip.New(ps)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	const proxies = "127.0.0.0/8, ::1, 10.0.0.0/8, 2001:db8:ffff::/48"
	r := resolver(t, proxies)
	for _, tc := range []struct {
		name, peer, xff, want string
	}{
		// The example: the client wrote 6.6.6.6, the proxy on
		// loopback appended the address it saw.
		{"issue example", "127.0.0.1", "6.6.6.6, 203.0.113.50", "203.0.113.50"},
		{"untrusted peer ignores header", "198.51.100.9", "203.0.113.50", "198.51.100.9"},
		{"trusted peer without header", "127.0.0.1", "", "127.0.0.1"},
		{"single entry", "10.1.2.3", "203.0.113.50", "203.0.113.50"},
		{"skips trusted hops", "127.0.0.1", "6.6.6.6, 203.0.113.50, 10.0.0.2, 10.0.0.1", "203.0.113.50"},
		{"all trusted gives leftmost", "127.0.0.1", "10.0.0.3, 10.0.0.2, 10.0.0.1", "10.0.0.3"},
		{"several lines walk as one list", "127.0.0.1", "6.6.6.6, 203.0.113.50|10.0.0.2", "203.0.113.50"},
		{"several lines, client in last", "127.0.0.1", "6.6.6.6|203.0.113.50", "203.0.113.50"},
		{"several lines all trusted", "127.0.0.1", "10.0.0.9|10.0.0.2, 10.0.0.1", "10.0.0.9"},
		{"garbage stops at peer", "127.0.0.1", "6.6.6.6, unknown", "127.0.0.1"},
		{"garbage stops at the hop that sent it", "127.0.0.1", "203.0.113.50, garbage, 10.0.0.2", "10.0.0.2"},
		{"garbage left of the client is not read", "127.0.0.1", "garbage, 203.0.113.50", "203.0.113.50"},
		{"empty entry stops", "127.0.0.1", "203.0.113.50,,10.0.0.2", "10.0.0.2"},
		{"trailing comma stops", "127.0.0.1", "203.0.113.50,", "127.0.0.1"},
		{"empty line stops", "127.0.0.1", "203.0.113.50|", "127.0.0.1"},
		{"port", "127.0.0.1", "203.0.113.50:5678", "203.0.113.50"},
		{"bracketed v6 with port", "127.0.0.1", "[2001:db8::1]:443", "2001:db8::1"},
		{"bracketed v6", "127.0.0.1", "[2001:db8::1]", "2001:db8::1"},
		{"zone dropped", "127.0.0.1", "fe80::1%eth0", "fe80::1"},
		{"zone in brackets dropped", "127.0.0.1", "[fe80::1%25eth0]:80", "fe80::1"},
		{"mapped entry unmapped", "127.0.0.1", "::ffff:203.0.113.50", "203.0.113.50"},
		{"mapped trusted entry skipped", "127.0.0.1", "203.0.113.50, ::ffff:10.0.0.2", "203.0.113.50"},
		{"mapped peer unmapped and trusted", "::ffff:127.0.0.1", "203.0.113.50", "203.0.113.50"},
		{"mapped untrusted peer unmapped", "::ffff:198.51.100.9", "203.0.113.50", "198.51.100.9"},
		{"v6 peer trusted", "::1", "2001:db8::7", "2001:db8::7"},
		{"v6 proxy prefix", "::1", "2001:db8::7, 2001:db8:ffff::1", "2001:db8::7"},
		{"tabs and spaces", "127.0.0.1", " \t203.0.113.50 \t, \t10.0.0.2\t", "203.0.113.50"},
		{"v6 with port unbracketed is garbage", "127.0.0.1", "203.0.113.50, 2001:db8::1:443:x", "127.0.0.1"},
		{"invalid peer", "", "203.0.113.50", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var peer netip.Addr
			if tc.peer != "" {
				peer = netip.MustParseAddr(tc.peer)
			}
			got := r.Resolve(peer, lines(tc.xff))
			want := ""
			if got.IsValid() {
				want = got.String()
			}
			if want != tc.want {
				t.Errorf("Resolve(%s, %q) = %q, want %q", tc.peer, tc.xff, want, tc.want)
			}
		})
	}
}

func TestResolveZeroValueTrustsNobody(t *testing.T) {
	t.Parallel()
	var r clientip.Resolver
	peer := netip.MustParseAddr("127.0.0.1")
	if got := r.Resolve(peer, lines("203.0.113.50")); got != peer {
		t.Errorf("zero Resolver: got %v, want the peer %v", got, peer)
	}
	var nilR *clientip.Resolver
	if got := nilR.Resolve(peer, lines("203.0.113.50")); got != peer {
		t.Errorf("nil Resolver: got %v, want the peer %v", got, peer)
	}
}

func TestNewNormalizes(t *testing.T) {
	t.Parallel()
	r := clientip.New([]netip.Prefix{
		netip.MustParsePrefix("::ffff:10.0.0.0/104"), // the IPv4 10.0.0.0/8
		netip.MustParsePrefix("192.168.1.77/24"),     // not masked
		{},                                           // invalid: matches nothing
	})
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.9.8.7", true},
		{"::ffff:10.9.8.7", true},
		{"192.168.1.1", true},
		{"192.168.2.1", false},
		{"11.0.0.1", false},
		{"::", false},
		{"0.0.0.0", false},
	} {
		if got := r.Trusted(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Trusted(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if r.Trusted(netip.Addr{}) {
		t.Error("the invalid address is trusted")
	}
}

func TestPeer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr net.Addr
		want string
	}{
		{"tcp v4", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80}, "192.0.2.1"},
		{"tcp v6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 80}, "2001:db8::1"},
		{"tcp zone dropped", &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, "fe80::1"},
		{"udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2).To4()}, "192.0.2.2"},
		{"unix", &net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "invalid IP"},
		{"nil", nil, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := clientip.Peer(tc.addr).String(); got != tc.want {
				t.Errorf("Peer(%v) = %s, want %s", tc.addr, got, tc.want)
			}
		})
	}
}

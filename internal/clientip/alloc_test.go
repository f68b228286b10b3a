package clientip_test

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestResolveDoesNotAllocate proves the zero-allocation promise on every
// kind of input the promise covers, including garbage that stops the walk.
func TestResolveDoesNotAllocate(t *testing.T) {
	r := resolver(t, "127.0.0.0/8, ::1, 10.0.0.0/8")
	trusted := netip.MustParseAddr("127.0.0.1")
	for _, xff := range []string{
		"",
		"6.6.6.6, 203.0.113.50",
		"203.0.113.50:5678, 10.0.0.1",
		"[2001:db8::1]:443, ::ffff:10.0.0.1",
		"fe80::1%eth0, 10.0.0.1",
		"fe80::1%a-zone-never-seen-before",
		"10.0.0.3|10.0.0.2, 10.0.0.1",
		"unknown, 10.0.0.1",
		"300.1.2.3",
		"01.2.3.4",
		"1.2.3",
		"[1.2.3.4]:80",
		"1.2.3.4:99999",
		"2001:db8::zz",
		",,,",
	} {
		hdr := lines(xff)
		if n := testing.AllocsPerRun(100, func() { _ = r.Resolve(trusted, hdr) }); n != 0 {
			t.Errorf("Resolve(%q) allocates %v times per call, want 0", xff, n)
		}
	}
}

// TestResolveFromFasthttpDoesNotAllocate proves the promise on the path the
// server takes: X-Forwarded-For lines read with PeekAll from a request that
// fasthttp parsed into a reused RequestHeader.
func TestResolveFromFasthttpDoesNotAllocate(t *testing.T) {
	r := resolver(t, "127.0.0.0/8")
	const raw = "POST /api/events HTTP/1.1\r\nHost: x\r\n" +
		"X-Forwarded-For: 6.6.6.6, 198.51.100.1\r\n" +
		"X-Forwarded-For: 203.0.113.50, 127.0.0.2\r\n\r\n"
	peer := netip.MustParseAddr("127.0.0.1")
	want := netip.MustParseAddr("203.0.113.50")
	var h fasthttp.RequestHeader
	src := strings.NewReader(raw)
	br := bufio.NewReader(src)
	var got netip.Addr
	n := testing.AllocsPerRun(100, func() {
		src.Reset(raw)
		br.Reset(src)
		h.Reset()
		if err := h.Read(br); err != nil {
			t.Fatal(err)
		}
		got = r.Resolve(peer, h.PeekAll(fasthttp.HeaderXForwardedFor))
	})
	if got != want {
		t.Errorf("Resolve = %v, want %v", got, want)
	}
	if n != 0 {
		t.Errorf("reading the header and resolving allocates %v times per request, want 0", n)
	}
}

// TestResolveAllocationException pins down the one documented exception: an
// entry made of IPv6 characters that netip still rejects costs exactly the
// allocation of netip's error value, never more.
func TestResolveAllocationException(t *testing.T) {
	r := resolver(t, "127.0.0.0/8")
	trusted := netip.MustParseAddr("127.0.0.1")
	for _, xff := range []string{"1::2::3", "1:2:3:4:5:6:7:8:9", "::ffff:1.2.3"} {
		hdr := lines(xff)
		if n := testing.AllocsPerRun(100, func() { _ = r.Resolve(trusted, hdr) }); n > 1 {
			t.Errorf("Resolve(%q) allocates %v times per call, want at most 1", xff, n)
		}
	}
}
